import { Worker } from 'node:worker_threads';
import { InferenceError } from '@warren/core';
import type { BatchEncodingView, TensorView } from './text-pipeline.ts';
import type {
  CloseMessage,
  RunMessage,
  ThreadMessage,
  ThreadStart,
  WireTensor,
} from './thread-protocol.ts';

/**
 * What a model thread runs: an import of its code, which is plain JavaScript so that it runs
 * without a TypeScript loader. Started from code rather than from the file: a thread takes its
 * process's Node options, and Node refuses to start one from a file when they hold `--input-type`
 * (a process run as `node --input-type=module -e …`). Handing the thread those options less
 * `--input-type` instead would make Node check them, and it refuses V8's (`--max-old-space-size`).
 */
const ENTRY_CODE = `import(${JSON.stringify(new URL('./model-thread-entry.mjs', import.meta.url).href)})`;

/**
 * Called with each model thread as it starts (tests use it to make one fail). Never `terminate()`
 * a model thread that may be running the model: onnxruntime-node then aborts the whole process.
 */
export type ThreadStartHook = (thread: Worker) => void;

interface PendingRun {
  resolve: (outputs: Record<string, TensorView>) => void;
  reject: (error: Error) => void;
}

/**
 * One worker thread holding one loaded model. Runs are sent with an id and answered by id. The
 * thread keeps the process alive only while a load or a run is waiting on it, so an idle model
 * never stops a process from exiting. If the thread stops, whatever the reason, every waiting
 * run rejects with an {@link InferenceError} and the thread is not used again.
 */
export class ModelThread {
  readonly #model: string;
  readonly #worker: Worker;
  readonly #pending = new Map<number, PendingRun>();
  #nextId = 1;
  /** Settles the load; cleared once it has. */
  #load: { resolve: () => void; reject: (error: Error) => void } | undefined;
  readonly #loading: Promise<void>;
  readonly #exit: Promise<void>;
  /** Set once the thread has stopped, or was asked to: why it takes no more runs. */
  #stopped: string | undefined;
  /** The error that brought the thread down, if one did. */
  #crash: Error | undefined;

  private constructor(start: ThreadStart, onStart: ThreadStartHook | undefined) {
    this.#model = start.model;
    this.#loading = new Promise((resolve, reject) => {
      this.#load = { resolve, reject };
    });
    this.#worker = new Worker(ENTRY_CODE, { eval: true, workerData: start });
    this.#worker.on('message', (message: ThreadMessage) => this.#received(message));
    this.#worker.on('error', (error) => {
      this.#crash = error;
    });
    // An answer that cannot be read has lost its id: fail every waiting run rather than one.
    this.#worker.on('messageerror', (error) => {
      this.#crash = error;
      this.#rejectPending(`an answer from its thread could not be read`);
      void this.close();
    });
    this.#exit = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        this.#exited(code);
        resolve();
      });
    });
    onStart?.(this.#worker);
  }

  /**
   * Start a thread and load the model in it. Rejects with the thread's own reason (a plain
   * `Error`) when the model cannot be loaded there; the caller wraps it as a load error.
   */
  static async start(start: ThreadStart, onStart?: ThreadStartHook): Promise<ModelThread> {
    const thread = new ModelThread(start, onStart);
    try {
      await thread.#loading;
      return thread;
    } catch (error) {
      // A thread whose load failed ends by itself; none is left behind once this rejects.
      await thread.#exit;
      throw error;
    }
  }

  /** Whether the thread still takes runs. */
  get running(): boolean {
    return this.#stopped === undefined;
  }

  /** Run the model once on a tokenised batch; resolves to its named output tensors. */
  run(inputs: BatchEncodingView): Promise<Record<string, TensorView>> {
    if (this.#stopped !== undefined) return Promise.reject(this.#stoppedError(this.#stopped));

    const id = this.#nextId++;
    const message: RunMessage = {
      type: 'run',
      id,
      inputs: { input_ids: int64(inputs.input_ids), attention_mask: int64(inputs.attention_mask) },
    };
    const answer = new Promise<Record<string, TensorView>>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    this.#worker.ref();
    this.#worker.postMessage(message);
    return answer;
  }

  /**
   * Take no more runs, let the thread answer those already sent, unload the model, and resolve
   * once the thread has ended.
   */
  async close(): Promise<void> {
    if (this.#stopped === undefined) {
      this.#stopped = 'its thread was closed';
      const message: CloseMessage = { type: 'close' };
      this.#worker.ref();
      this.#worker.postMessage(message);
    }
    await this.#exit;
  }

  #received(message: ThreadMessage): void {
    if (message.type === 'ready') this.#loaded();
    else if (message.type === 'load-failed') this.#loaded(new Error(message.message));
    else this.#answered(message);
  }

  #loaded(failure?: Error): void {
    const load = this.#load;
    this.#load = undefined;
    if (failure) this.#stopped ??= 'its model did not load';
    else if (this.#pending.size === 0) this.#worker.unref();
    if (failure) load?.reject(failure);
    else load?.resolve();
  }

  #answered(message: Extract<ThreadMessage, { id: number }>): void {
    const pending = this.#pending.get(message.id);
    if (!pending) return;

    this.#pending.delete(message.id);
    if (this.#pending.size === 0 && this.#stopped === undefined) this.#worker.unref();
    if (message.type === 'result') pending.resolve(message.outputs);
    else pending.reject(new Error(message.message));
  }

  #exited(code: number): void {
    const crash = this.#crash ? `: ${this.#crash.message}` : '';
    this.#load?.reject(
      new Error(`its thread stopped (exit code ${code}) before the model loaded${crash}`),
    );
    this.#load = undefined;
    this.#stopped ??= `its thread stopped (exit code ${code})`;
    this.#rejectPending(`its thread stopped (exit code ${code}) before answering`);
  }

  #rejectPending(reason: string): void {
    const error = this.#stoppedError(reason);
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  #stoppedError(reason: string): InferenceError {
    const crash = this.#crash ? `: ${this.#crash.message}` : '';
    return new InferenceError(`Model "${this.#model}" failed: ${reason}${crash}`, {
      ...(this.#crash ? { cause: this.#crash } : {}),
    });
  }
}

/** A tokenizer tensor as int64, the type the model's inputs have; copied, not transferred. */
function int64(tensor: TensorView): WireTensor {
  const { data } = tensor;
  const values = data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v));
  return { dims: [...tensor.dims], data: values };
}
