import type { DataType, PreTrainedTokenizer } from '@huggingface/transformers';
import type {
  BatchEncodingView,
  ModelConfigView,
  PipelineTask,
  TensorView,
  TextPipeline,
  TokenizerView,
} from './text-pipeline.ts';

/** Options passed to a {@link PipelineLoader}. */
export interface PipelineLoadOptions {
  dtype: DataType;
  /**
   * Threads ONNX Runtime may use within one run of the model (its `intraOpNumThreads`); 0
   * leaves the count to ONNX Runtime, which takes one per physical core.
   */
  intraOpThreads: number;
  /** Whether ONNX Runtime's threads spin while they wait for work; see {@link onnxSessionOptions}. */
  allowSpinning: boolean;
}

/** The ONNX Runtime session options a model is loaded with (transformers.js's `session_options`). */
export interface OnnxSessionOptions {
  intraOpNumThreads: number;
  /** Session config entries; nested keys are joined with dots, values are strings. */
  extra: { session: { intra_op: { allow_spinning: '0' | '1' } } };
}

/**
 * The session options for a load. With spinning allowed (ONNX Runtime's own default) the threads
 * of a run keep a core busy for a while after it ends, waiting for the next run; in a worker the
 * event loop and the broker need that core for the queue work between batches.
 */
export function onnxSessionOptions({
  intraOpThreads,
  allowSpinning,
}: Pick<PipelineLoadOptions, 'intraOpThreads' | 'allowSpinning'>): OnnxSessionOptions {
  return {
    intraOpNumThreads: intraOpThreads,
    extra: { session: { intra_op: { allow_spinning: allowSpinning ? '1' : '0' } } },
  };
}

/**
 * Loads one model for one task. The default wraps transformers.js's `pipeline()`; tests inject
 * their own (for instance one that counts calls and then delegates to the default).
 */
export type PipelineLoader = (
  task: PipelineTask,
  model: string,
  options: PipelineLoadOptions,
) => Promise<TextPipeline>;

/**
 * Load `model` for `task` with transformers.js. It reads the process-global `env` at the time of
 * the call, so callers must set that first (see `pipeline-cache.ts`).
 */
export const loadWithTransformers: PipelineLoader = async (
  task,
  model,
  { dtype, ...threading },
) => {
  // Imported on first load: transformers.js and ONNX Runtime cost about 180 MB of memory, which
  // a worker whose handlers never load a local model should not pay.
  const { pipeline, Tensor } = await transformers();
  const loaded = await pipeline(task, model, {
    dtype,
    session_options: onnxSessionOptions(threading),
  });
  const transformersModel = loaded.model;

  return {
    tokenizer: tokenizerView(loaded.tokenizer),
    model: {
      run: async (inputs: BatchEncodingView) => tensorsOf(await transformersModel(inputs), Tensor),
      config: readConfig(transformersModel.config),
    },
    dispose: () => loaded.dispose(),
  };
};

/** The {@link TokenizerView} of a transformers.js tokenizer. */
export function tokenizerView(tokenizer: PreTrainedTokenizer): TokenizerView {
  return {
    encodeBatch: (texts, options) => {
      const { input_ids, attention_mask } = tokenizer(texts, options);
      return { input_ids, attention_mask };
    },
    countTokens: (text) => tokenizer(text, { return_tensor: false }).input_ids.length,
    get modelMaxLength(): number {
      const limit: unknown = tokenizer.model_max_length;
      return typeof limit === 'number' ? limit : Number.POSITIVE_INFINITY;
    },
  };
}

/** The model's named outputs that are numeric tensors (transformers.js types them as `any`). */
function tensorsOf(
  outputs: unknown,
  Tensor: typeof import('@huggingface/transformers').Tensor,
): Record<string, TensorView> {
  const tensors: Record<string, TensorView> = {};
  if (typeof outputs !== 'object' || outputs === null) return tensors;

  for (const [name, value] of Object.entries(outputs)) {
    if (!(value instanceof Tensor)) continue;
    const { data } = value;
    if (!Array.isArray(data)) tensors[name] = { dims: value.dims, data };
  }
  return tensors;
}

/** The config fields used here, checked at run time: transformers.js types only a few of them. */
export function readConfig(config: object): ModelConfigView {
  const id2label: unknown = Reflect.get(config, 'id2label');
  const problemType: unknown = Reflect.get(config, 'problem_type');
  const maxPositions: unknown = Reflect.get(config, 'max_position_embeddings');

  return {
    ...(isStringRecord(id2label) ? { id2label } : {}),
    ...(typeof problemType === 'string' ? { problem_type: problemType } : {}),
    ...(typeof maxPositions === 'number' ? { max_position_embeddings: maxPositions } : {}),
  };
}

function isStringRecord(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null) return false;
  return Object.values(value).every((entry) => typeof entry === 'string');
}

/** transformers.js, imported once, when a model is first loaded. */
export function transformers(): Promise<typeof import('@huggingface/transformers')> {
  transformersModule ??= import('@huggingface/transformers');
  return transformersModule;
}

let transformersModule: Promise<typeof import('@huggingface/transformers')> | undefined;
