/**
 * The messages between the main thread and a model thread (`model-thread-entry.mjs`), and the
 * transformers.js settings a thread starts with. The thread's code is plain JavaScript and cannot
 * import these types; they are the contract it follows.
 */
import type { DataType } from '@huggingface/transformers';
import type { OnnxSessionOptions } from './default-loader.ts';
import type { PipelineTask } from './text-pipeline.ts';

/**
 * The fields of transformers.js's process-global `env` that decide where a model loads from.
 * `pipeline-cache.ts` writes them before each load; a model thread has an `env` of its own, so
 * the thread loader copies them into it.
 */
export interface LoadEnv {
  allowLocalModels: boolean;
  localModelPath: string;
  allowRemoteModels: boolean;
  cacheDir: string | null;
}

/** The {@link LoadEnv} fields of `env`, and nothing else. */
export function readLoadEnv(env: LoadEnv): LoadEnv {
  const { allowLocalModels, localModelPath, allowRemoteModels, cacheDir } = env;
  return { allowLocalModels, localModelPath, allowRemoteModels, cacheDir };
}

/** What a model thread is started with (its `workerData`): the model to load, and how. */
export interface ThreadStart {
  task: PipelineTask;
  model: string;
  dtype: DataType;
  /** What the model's ONNX Runtime session is created with (its threads, spinning). */
  sessionOptions: OnnxSessionOptions;
  env: LoadEnv;
  /**
   * transformers.js's `env.logLevel` on the calling thread, so that the model thread, and ONNX
   * Runtime's log of the session it creates, are as quiet or as verbose as that thread.
   */
  logLevel: number;
}

/** A tensor on the wire: a typed array in row-major order, and its dimensions. */
export interface WireTensor {
  dims: number[];
  data: BigInt64Array | Float32Array | Float64Array | Int32Array | Uint8Array;
}

/** Main thread to model thread: run the model once on one tokenised batch. */
export interface RunMessage {
  type: 'run';
  id: number;
  inputs: { input_ids: WireTensor; attention_mask: WireTensor };
}

/**
 * Main thread to model thread: answer the runs already sent, unload the model and end. A thread
 * is never stopped with `Worker.terminate()` while it may be running the model: onnxruntime-node
 * aborts the whole process when its run is cut short.
 */
export interface CloseMessage {
  type: 'close';
}

/** Model thread to main thread. A `result` or `run-failed` answers the `run` of the same id. */
export type ThreadMessage =
  | { type: 'ready' }
  | { type: 'load-failed'; message: string }
  | { type: 'result'; id: number; outputs: Record<string, WireTensor> }
  | { type: 'run-failed'; id: number; message: string };
