import { InferenceError } from '@warren/core';
import {
  onnxSessionOptions,
  type PipelineLoader,
  readConfig,
  tokenizerView,
  transformers,
} from './default-loader.ts';
import { ModelThread, type ThreadStartHook } from './model-thread.ts';
import type { BatchEncodingView, ModelConfigView, ModelView, TensorView } from './text-pipeline.ts';
import { readLoadEnv, type ThreadStart } from './thread-protocol.ts';

/** Options of {@link createThreadLoader}. */
export interface ThreadLoaderOptions {
  /** Called with each model thread as it starts, restarts included. */
  onThreadStart?: ThreadStartHook;
}

/**
 * A {@link PipelineLoader} that runs each model's forward pass in a worker thread of its own, so
 * ONNX Runtime never blocks the event loop. The tokenizer and the model's config stay on the
 * calling thread, where token counting and truncation need them synchronously; only the
 * tokenised batch crosses to the thread, and the output tensors come back transferred.
 *
 * Like {@link loadWithTransformers} it reads transformers.js's `env` at the time of the call, and
 * the thread starts with the same settings. If the thread stops, the runs waiting on it reject
 * with an `InferenceError` and the next run starts a fresh thread, loading the model again.
 */
export function createThreadLoader(options: ThreadLoaderOptions = {}): PipelineLoader {
  return async (task, model, { dtype, ...threading }) => {
    const { AutoConfig, AutoTokenizer, env } = await transformers();
    const sessionOptions = onnxSessionOptions(threading);
    const start: ThreadStart = {
      task,
      model,
      dtype,
      sessionOptions,
      env: readLoadEnv(env),
      logLevel: env.logLevel,
    };

    // The thread loads while this thread reads the config and tokenizer. A missing folder fails
    // here first with transformers.js's own clear message, so that one is reported.
    const [here, there] = await Promise.allSettled([
      (async () => {
        const config = await AutoConfig.from_pretrained(model);
        return { config, tokenizer: await AutoTokenizer.from_pretrained(model) };
      })(),
      ModelThread.start(start, options.onThreadStart),
    ]);
    if (here.status === 'rejected') {
      if (there.status === 'fulfilled') await there.value.close();
      throw here.reason;
    }
    if (there.status === 'rejected') throw there.reason;

    const threaded = new ThreadedModel(there.value, start, readConfig(here.value.config), options);
    return {
      tokenizer: tokenizerView(here.value.tokenizer),
      model: threaded,
      dispose: () => threaded.close(),
    };
  };
}

/** The default thread loader: {@link createThreadLoader} without hooks, shared by the process. */
export const loadInThread: PipelineLoader = createThreadLoader();

/** A model in a worker thread, started again on the next run if the thread has stopped. */
class ThreadedModel implements ModelView {
  readonly config: ModelConfigView;
  readonly #start: ThreadStart;
  readonly #onThreadStart: ThreadStartHook | undefined;
  #thread: ModelThread;
  #restarting: Promise<ModelThread> | undefined;
  #closed = false;

  constructor(
    thread: ModelThread,
    start: ThreadStart,
    config: ModelConfigView,
    options: ThreadLoaderOptions,
  ) {
    this.#thread = thread;
    this.#start = start;
    this.config = config;
    this.#onThreadStart = options.onThreadStart;
  }

  async run(inputs: BatchEncodingView): Promise<Readonly<Record<string, TensorView>>> {
    const thread = this.#thread.running ? this.#thread : await this.#restart();
    return thread.run(inputs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const restarting = this.#restarting?.catch(() => undefined);
    await Promise.all([this.#thread.close(), restarting?.then((thread) => thread?.close())]);
  }

  /** A fresh thread with the model loaded; concurrent runs share one restart. */
  #restart(): Promise<ModelThread> {
    const { model } = this.#start;
    if (this.#closed) {
      return Promise.reject(new InferenceError(`Model "${model}" failed: it has been unloaded`));
    }

    this.#restarting ??= ModelThread.start(this.#start, this.#onThreadStart).then(
      (thread) => {
        this.#thread = thread;
        this.#restarting = undefined;
        if (this.#closed) void thread.close();
        return thread;
      },
      (error: unknown) => {
        this.#restarting = undefined;
        const reason = error instanceof Error ? error.message : String(error);
        throw new InferenceError(`Model "${model}" failed: restarting its thread: ${reason}`, {
          cause: error,
        });
      },
    );
    return this.#restarting;
  }
}
