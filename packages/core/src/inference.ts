/**
 * What a handler calls to run a model. `@warren/inference` implements it locally (transformers.js)
 * and remotely (Hugging Face Inference API or any compatible endpoint).
 */

/** Pooling of token vectors into one vector per input. */
export type Pooling = 'mean' | 'cls';

export interface FeatureExtractionRequest {
  /** Model id: a folder under the local model path, or a hub id. */
  model: string;
  inputs: string[];
  pooling?: Pooling;
  normalize?: boolean;
  signal?: AbortSignal;
}

export interface TextClassificationRequest {
  model: string;
  inputs: string[];
  /** How many labels to return per input, best first (default 1). */
  topK?: number;
  signal?: AbortSignal;
}

export interface ClassificationLabel {
  label: string;
  score: number;
}

export interface InferenceClient {
  /** One vector per input (pooled), in the order of the inputs. */
  featureExtraction(request: FeatureExtractionRequest): Promise<number[][]>;
  /** One list of labels per input, in the order of the inputs. */
  textClassification(request: TextClassificationRequest): Promise<ClassificationLabel[][]>;
}
