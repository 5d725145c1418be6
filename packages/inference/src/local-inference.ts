import { availableParallelism } from 'node:os';
import type { DataType } from '@huggingface/transformers';
import {
  type ClassificationLabel,
  ConfigError,
  describeValue,
  type FeatureExtractionRequest,
  type InferenceClient,
  InferenceError,
  InputTooLongError,
  isWarrenError,
  type LogSink,
  silentLogSink,
  type TextClassificationRequest,
  type WarrenError,
} from '@warren/core';
import { loadWithTransformers, type PipelineLoader } from './default-loader.ts';
import { checkTopK, logitRows, topLabels } from './labels.ts';
import { loadPipeline, type ModelSource, releasePipelines } from './pipeline-cache.ts';
import type { PipelineTask, TensorView, TextPipeline } from './text-pipeline.ts';
import { loadInThread } from './thread-loader.ts';
import { normalizeVector, poolVectors } from './vectors.ts';

/** What to do with an input longer than the model's token limit. */
export type TooLongPolicy = 'truncate' | 'refuse';

/** Options of {@link LocalInference}. */
export interface LocalInferenceOptions {
  /** Folder with one sub-folder per model; a request's `model` names the sub-folder. */
  localModelPath?: string;
  /**
   * Whether a model missing locally may be fetched from the Hugging Face hub by its id. Default:
   * `false` when `localModelPath` is set, `true` otherwise.
   */
  allowRemoteModels?: boolean;
  /** Where models fetched from the hub are cached; transformers.js's default otherwise. */
  cacheDir?: string;
  /** Weights to load: `fp32` (default) reads `onnx/model.onnx`, `q8` `onnx/model_quantized.onnx`. */
  dtype?: DataType;
  /** `truncate` (default) cuts long inputs at the limit; `refuse` rejects them unrun. */
  onTooLong?: TooLongPolicy;
  /**
   * Token limit per input. Default, and never more than: the tokenizer's `model_max_length`, or
   * the model's `max_position_embeddings` when the tokenizer names no limit.
   */
  maxInputTokens?: number;
  logger?: LogSink;
  /**
   * Whether each model runs in a worker thread of its own (default `true`), keeping the event
   * loop free while ONNX Runtime works. `false` runs models on the calling thread.
   */
  thread?: boolean;
  /**
   * Threads ONNX Runtime uses within one run of a model (its `intraOpNumThreads`). Default:
   * {@link defaultIntraOpThreads}, one fewer than the cores from three cores up. 0 leaves the
   * count to ONNX Runtime: one thread per physical core. Lower it when several workers, or the
   * broker, share the machine.
   */
  intraOpThreads?: number;
  /**
   * Whether ONNX Runtime's threads may spin, keeping their cores busy, while they wait for the
   * next run (its `session.intra_op.allow_spinning`). Default `false`: in a queue worker the
   * event loop and the broker want those cores between batches (docs/operating.md says what it
   * measured, from figures 2 a/g and 2 c/h of docs/benchmarks.md).
   */
  allowSpinning?: boolean;
  /**
   * Loads a model; overrides `thread`. Defaults to {@link loadInThread}, or to
   * {@link loadWithTransformers} with `thread: false`. Tests inject their own.
   */
  loader?: PipelineLoader;
}

/**
 * Runs models in this process with transformers.js and ONNX Runtime.
 *
 * Each model is loaded once per process (per task, dtype and source), on first use or by
 * {@link LocalInference.load}, and shared by every instance. By default its forward pass runs in
 * a worker thread of its own while tokenising and pooling stay on the calling thread (see
 * {@link loadInThread}). ONNX runs cannot be interrupted: an abort signal is honoured before
 * loading and before running, not during a run.
 */
export class LocalInference implements InferenceClient {
  readonly #source: ModelSource;
  readonly #onTooLong: TooLongPolicy;
  readonly #maxInputTokens: number | undefined;
  readonly #logger: LogSink;
  readonly #loader: PipelineLoader;

  constructor(options: LocalInferenceOptions = {}) {
    const { localModelPath, cacheDir, maxInputTokens } = options;
    const allowRemoteModels = options.allowRemoteModels ?? localModelPath === undefined;
    if (localModelPath === undefined && !allowRemoteModels) {
      throw new ConfigError(
        'LocalInference needs a localModelPath when allowRemoteModels is false',
      );
    }
    if (maxInputTokens !== undefined && !(Number.isInteger(maxInputTokens) && maxInputTokens > 0)) {
      throw invalidOption('maxInputTokens', 'a whole number above 0', maxInputTokens);
    }
    const { intraOpThreads = defaultIntraOpThreads() } = options;
    if (!(Number.isInteger(intraOpThreads) && intraOpThreads >= 0)) {
      throw invalidOption('intraOpThreads', 'a whole number, 0 or more', intraOpThreads);
    }

    const { allowSpinning = false } = options;
    if (typeof allowSpinning !== 'boolean') {
      throw invalidOption('allowSpinning', 'true or false', allowSpinning);
    }

    this.#source = {
      ...(localModelPath !== undefined ? { localModelPath } : {}),
      ...(cacheDir !== undefined ? { cacheDir } : {}),
      allowRemoteModels,
      dtype: options.dtype ?? 'fp32',
      intraOpThreads,
      allowSpinning,
    };
    this.#onTooLong = options.onTooLong ?? 'truncate';
    this.#maxInputTokens = maxInputTokens;
    this.#logger = options.logger ?? silentLogSink;
    this.#loader =
      options.loader ?? (options.thread === false ? loadWithTransformers : loadInThread);
  }

  /**
   * Load `model` for `task` now, so that a worker can fail before it starts consuming rather than
   * on its first message. Rejects with a `ModelLoadError`.
   */
  async load(task: PipelineTask, model: string): Promise<void> {
    await this.#pipeline(task, model);
  }

  /**
   * Let go of the models this client loaded. A model no other client holds is unloaded: runs
   * already sent to its thread finish, then the thread frees the model and ends. Idle model
   * threads never keep a process alive, but closing frees their memory. A later call loads again.
   */
  close(): Promise<void> {
    return releasePipelines(this.#loader, this, this.#logger);
  }

  /**
   * One vector per input, in order. Empty `inputs` resolve to `[]` without loading the model.
   * `pooling` defaults to `mean`; use `cls` for models that return one vector per input.
   */
  async featureExtraction(request: FeatureExtractionRequest): Promise<number[][]> {
    const { model, inputs, pooling = 'mean', normalize = false, signal } = request;
    if (inputs.length === 0) return [];

    const { outputs, attentionMask } = await this.#run('feature-extraction', model, inputs, signal);

    return orInferenceError(model, () => {
      const hidden = outputs.last_hidden_state ?? outputs.logits ?? outputs.token_embeddings;
      if (!hidden) throw new Error('the model returned no hidden states');
      const vectors = poolVectors(hidden, attentionMask, pooling);
      return normalize ? vectors.map(normalizeVector) : vectors;
    });
  }

  /**
   * The `topK` (default 1) best labels per input, best first, in the order of the inputs. Scores
   * are a softmax across labels, or a sigmoid per label for multi-label models. Empty `inputs`
   * resolve to `[]` without loading the model.
   */
  async textClassification(request: TextClassificationRequest): Promise<ClassificationLabel[][]> {
    const { model, inputs, signal } = request;
    const topK = checkTopK(request.topK);
    if (inputs.length === 0) return [];

    const { pipeline, outputs } = await this.#run('text-classification', model, inputs, signal);

    return orInferenceError(model, () => {
      if (!outputs.logits) throw new Error('the model returned no logits');
      const { id2label, problem_type } = pipeline.model.config;
      const scoring = problem_type === 'multi_label_classification' ? 'sigmoid' : 'softmax';
      const rows = logitRows(outputs.logits.data, outputs.logits.dims);
      return rows.map((row) => topLabels(row, scoring, topK, id2label));
    });
  }

  #pipeline(task: PipelineTask, model: string): Promise<TextPipeline> {
    return loadPipeline(this.#loader, task, model, this.#source, this.#logger, this);
  }

  /** Load, check lengths, tokenise and run once over all inputs. */
  async #run(
    task: PipelineTask,
    model: string,
    inputs: string[],
    signal: AbortSignal | undefined,
  ): Promise<ModelRun> {
    signal?.throwIfAborted();
    const pipeline = await this.#pipeline(task, model);
    const limit = this.#tokenLimit(pipeline);

    const encoded = orInferenceError(model, () => {
      if (this.#onTooLong === 'refuse') refuseTooLong(pipeline, model, inputs, limit);
      return pipeline.tokenizer.encodeBatch(inputs, {
        padding: true,
        truncation: true,
        max_length: limit,
      });
    });
    signal?.throwIfAborted();

    try {
      const outputs = await pipeline.model.run(encoded);
      return { pipeline, outputs, attentionMask: encoded.attention_mask };
    } catch (error) {
      throw asWarrenError(model, error);
    }
  }

  #tokenLimit(pipeline: TextPipeline): number {
    const fromTokenizer = pipeline.tokenizer.modelMaxLength;
    const modelLimit = Number.isFinite(fromTokenizer)
      ? fromTokenizer
      : (pipeline.model.config.max_position_embeddings ?? Number.POSITIVE_INFINITY);
    return Math.min(this.#maxInputTokens ?? modelLimit, modelLimit);
  }
}

/**
 * ONNX Runtime's threads per run when none are asked for: one fewer than `cores`, so that the
 * event loop (tokenising, publishing, acking) has a core while a batch runs, but never fewer
 * than two on a machine that has two. Measured on two cores, one thread cut batched throughput
 * by about a third, while the event-loop delay stayed under 50 ms with two (docs/operating.md).
 */
export function defaultIntraOpThreads(cores: number = availableParallelism()): number {
  return Math.max(Math.min(cores, 2), cores - 1);
}

/** The error for an option of LocalInference's that holds what it cannot take. */
function invalidOption(name: string, expected: string, value: unknown): ConfigError {
  return new ConfigError(
    `LocalInference ${name}: expected ${expected}, got ${describeValue(value, true)}`,
  );
}

/** A loaded pipeline, what its model returned, and the attention mask of the batch. */
interface ModelRun {
  pipeline: TextPipeline;
  outputs: Readonly<Record<string, TensorView>>;
  attentionMask: TensorView;
}

/** `work()`, with anything it throws that is not a Warren error wrapped in InferenceError. */
function orInferenceError<T>(model: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw asWarrenError(model, error);
  }
}

function asWarrenError(model: string, error: unknown): WarrenError {
  if (isWarrenError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new InferenceError(`Model "${model}" failed: ${reason}`, { cause: error });
}

/** Throw {@link InputTooLongError} for the first input over `limit` tokens. */
function refuseTooLong(pipeline: TextPipeline, model: string, inputs: string[], limit: number) {
  for (const [index, input] of inputs.entries()) {
    const tokens = pipeline.tokenizer.countTokens(input);
    if (tokens > limit) {
      throw new InputTooLongError(
        `Input ${index} is ${tokens} tokens long; model "${model}" accepts at most ${limit}`,
      );
    }
  }
}
