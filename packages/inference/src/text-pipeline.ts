/**
 * The narrow view of a transformers.js text pipeline that this package relies on: its tokenizer,
 * its model and the model's config. Keeping it small lets tests inject a loader and keeps the
 * library's wide types at one boundary (`default-loader.ts`).
 */

/** A tensor as transformers.js returns it: flat data in row-major order and its dimensions. */
export interface TensorView {
  readonly dims: readonly number[];
  readonly data: ArrayLike<number | bigint>;
}

/** What the tokenizer returns for a batch, padded and truncated to one length. */
export interface BatchEncodingView {
  readonly input_ids: TensorView;
  readonly attention_mask: TensorView;
}

/** Options of a batch tokenizer call. */
export interface BatchTokenizeOptions {
  padding: true;
  truncation: true;
  max_length: number;
}

/** The tokenizer of a loaded pipeline. */
export interface TokenizerView {
  /** Tokenise a batch into tensors, truncating each input at `max_length` tokens. */
  encodeBatch(texts: string[], options: BatchTokenizeOptions): BatchEncodingView;
  /** The number of tokens `text` becomes, special tokens included, without truncation. */
  countTokens(text: string): number;
  /** The tokenizer's own limit (`model_max_length`), or `Infinity` when it names none. */
  readonly modelMaxLength: number;
}

/** The parts of a model's `config.json` used here. */
export interface ModelConfigView {
  readonly id2label?: Readonly<Record<string, string>>;
  readonly problem_type?: string;
  readonly max_position_embeddings?: number;
}

/** The model of a loaded pipeline. */
export interface ModelView {
  /** Run the model once on tokenised inputs; resolves to its named outputs. */
  run(inputs: BatchEncodingView): Promise<Readonly<Record<string, TensorView>>>;
  readonly config: ModelConfigView;
}

/** A loaded text pipeline: one tokenizer and one ONNX model, ready to run. */
export interface TextPipeline {
  readonly tokenizer: TokenizerView;
  readonly model: ModelView;
  /** Free what the load holds (ONNX sessions, a model thread). The pipeline is not used after. */
  dispose?(): Promise<void>;
}

/** The tasks `LocalInference` can load a model for. */
export type PipelineTask = 'feature-extraction' | 'text-classification';
