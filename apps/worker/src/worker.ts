import { AmqpTransport, redactUrl } from '@warren/amqp';
import {
  ConfigError,
  Consumer,
  type ConsumerExit,
  type DedupeOptions,
  type DedupeStore,
  type InferenceClient,
  MemoryDedupeStore,
  type Transport,
} from '@warren/core';
import { LocalInference, RemoteInference } from '@warren/inference';
import { RedisDedupeStore } from '@warren/redis';
import type { Logger } from 'pino';
import type { WorkerConfig } from './config.ts';
import { type LoadedHandler, loadHandler } from './plugins.ts';

export interface WorkerOptions {
  config: WorkerConfig;
  logger: Logger;
  /** Replaces the RabbitMQ transport built from the config (tests, embedded brokers). */
  transport?: Transport;
  /** Replaces the inference client built from the config. */
  inference?: InferenceClient;
  /** Replaces the dedupe store named by the config (for example one shared by two workers). */
  dedupeStore?: DedupeStore;
  /** Where AMQP_URL and access tokens are read from (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/** How a worker ended: `ok` unless a consumer failed. */
export interface WorkerExit {
  ok: boolean;
  consumers: Array<{ handler: string } & ConsumerExit>;
}

/** Time a stop allows beyond the drain timeout before it closes channels under running jobs. */
const STOP_GRACE_MS = 5_000;

/**
 * A worker process's runtime: one consumer actor per handler plugin, sharing one transport and
 * one inference client. A consumer that fails stops the others, and the worker exits not ok so
 * that the platform restarts the process.
 */
export class Worker {
  readonly consumers: ReadonlyArray<{ handler: string; consumer: Consumer }>;
  readonly #transport: Transport;
  readonly #dedupeStore: DedupeStore | undefined;
  /** The inference client the worker built (one passed in is the caller's to close). */
  readonly #inference: LocalInference | undefined;
  readonly #logger: Logger;
  readonly #config: WorkerConfig;
  #stopping: Promise<WorkerExit> | undefined;
  readonly #exited: Promise<WorkerExit>;
  #resolveExited!: (exit: WorkerExit) => void;

  private constructor(
    consumers: Array<{ handler: string; consumer: Consumer }>,
    transport: Transport,
    dedupeStore: DedupeStore | undefined,
    inference: LocalInference | undefined,
    config: WorkerConfig,
    logger: Logger,
  ) {
    this.consumers = consumers;
    this.#transport = transport;
    this.#dedupeStore = dedupeStore;
    this.#inference = inference;
    this.#config = config;
    this.#logger = logger;
    this.#exited = new Promise((resolve) => {
      this.#resolveExited = resolve;
    });
    for (const { handler, consumer } of consumers) {
      void consumer.exited.then((exit) => {
        if (exit.state !== 'failed' || this.#stopping) return;
        this.#logger.error({ handler, err: exit.error }, 'consumer failed; stopping the worker');
        void this.stop();
      });
    }
  }

  /** Loads every plugin, runs each handler's setup, then starts one consumer per handler. */
  static async start(options: WorkerOptions): Promise<Worker> {
    const { config, logger } = options;
    const env = options.env ?? process.env;
    const loaded = await loadHandlers(config);
    const inference = options.inference ?? createInference(config, env, logger);
    // Its model threads must end for the process to exit cleanly.
    const ownInference =
      options.inference === undefined && inference instanceof LocalInference
        ? inference
        : undefined;
    const transport = options.transport ?? createTransport(config, env, logger);
    const dedupe = createDedupe(config, env, options.dedupeStore);

    const consumers: Array<{ handler: string; consumer: Consumer }> = [];
    try {
      for (const [index, { handler, options: handlerOptions }] of loaded.entries()) {
        const entry = config.handlers[index]!;
        const handlerLogger = logger.child({ handler: handler.name });
        await handler.setup?.({ logger: handlerLogger, inference, options: handlerOptions });

        const consumer = new Consumer({
          handler,
          handlerOptions,
          transport,
          inference,
          logger,
          prefetch: entry.prefetch,
          concurrency: entry.concurrency,
          drainTimeoutMs: config.shutdown.drainTimeoutMs,
          topology: config.topology,
          retry: entry.retry,
          batch: entry.batch,
          adaptivePrefetch: entry.adaptivePrefetch,
          deadlines: config.deadlines,
          dedupe,
        });
        consumers.push({ handler: handler.name, consumer });
        await consumer.start();
        handlerLogger.info(
          {
            modelType: handler.modelType,
            prefetch: entry.prefetch,
            queue: `${config.topology.prefix}.jobs.${handler.modelType}`,
          },
          'consumer started',
        );
      }
    } catch (error) {
      await Promise.allSettled(consumers.map(({ consumer }) => consumer.stop()));
      await transport.close();
      await ownInference?.close();
      if (options.dedupeStore === undefined) await dedupe?.store.close();
      throw error;
    }
    // A store the caller passed in may be shared with other workers: the caller closes it.
    const ownStore = options.dedupeStore === undefined ? dedupe?.store : undefined;
    return new Worker(consumers, transport, ownStore, ownInference, config, logger);
  }

  /**
   * Stops consuming, lets started jobs finish (up to the drain timeout, then aborts them and
   * requeues their messages), closes the transport. Safe to call more than once.
   */
  stop(): Promise<WorkerExit> {
    this.#stopping ??= this.#stop().then((exit) => {
      this.#resolveExited(exit);
      return exit;
    });
    return this.#stopping;
  }

  /** Resolves once the worker has stopped, whether asked to or because a consumer failed. */
  get exited(): Promise<WorkerExit> {
    return this.#exited;
  }

  async #stop(): Promise<WorkerExit> {
    this.#logger.info({ consumers: this.consumers.length }, 'worker draining');
    const limit = this.#config.shutdown.drainTimeoutMs + STOP_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), limit);
    });
    const stopped = Promise.all(
      this.consumers.map(async ({ handler, consumer }) => ({
        handler,
        ...(await consumer.stop()),
      })),
    );
    const outcome = await Promise.race([stopped, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#logger.error({ limitMs: limit }, 'jobs did not finish in time; closing under them');
    }
    await this.#transport.close();
    await this.#inference?.close();
    await this.#dedupeStore?.close();

    const consumers =
      outcome === 'timeout'
        ? this.consumers.map(({ handler, consumer }) => ({
            handler,
            state: 'failed' as const,
            counts: consumer.counts,
          }))
        : outcome;
    const exit = { ok: consumers.every((c) => c.state === 'stopped'), consumers };
    this.#logger.info(
      { ok: exit.ok, counts: Object.fromEntries(consumers.map((c) => [c.handler, c.counts])) },
      'worker stopped',
    );
    return exit;
  }
}

async function loadHandlers(config: WorkerConfig): Promise<LoadedHandler[]> {
  const loaded = await Promise.all(
    config.handlers.map((entry, index) => loadHandler(entry.module, index, entry.options)),
  );
  const seen = new Map<string, number>();
  for (const [index, { handler }] of loaded.entries()) {
    const first = seen.get(handler.name);
    if (first !== undefined) {
      throw new ConfigError(
        `config.handlers[${index}]: handler name ${handler.name} is already used by config.handlers[${first}]`,
      );
    }
    seen.set(handler.name, index);
  }
  return loaded;
}

function createDedupe(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
  injected: DedupeStore | undefined,
): DedupeOptions | undefined {
  const { store, redisUrlEnv, leaseMs, ttlMs } = config.dedupe;
  if (injected !== undefined) return { store: injected, leaseMs, ttlMs };
  if (store === 'none') return undefined;
  if (store === 'memory') return { store: new MemoryDedupeStore(), leaseMs, ttlMs };
  const url = env[redisUrlEnv] ?? 'redis://127.0.0.1:6379';
  return { store: new RedisDedupeStore({ url }), leaseMs, ttlMs };
}

function createTransport(
  config: WorkerConfig,
  env: WorkerOptions['env'] & object,
  logger: Logger,
): Transport {
  const url = env.AMQP_URL ?? config.broker.url;
  logger.info({ broker: redactUrl(url) }, 'broker selected');
  return new AmqpTransport({
    url,
    logger,
    connectionName: config.broker.connectionName ?? 'warren-worker',
  });
}

function createInference(
  config: WorkerConfig,
  env: WorkerOptions['env'] & object,
  logger: Logger,
): InferenceClient {
  const { use, local, remote } = config.inference;
  if (use === 'remote') {
    const accessToken =
      remote.accessTokenEnv === undefined ? undefined : env[remote.accessTokenEnv];
    if (remote.accessTokenEnv !== undefined && accessToken === undefined) {
      throw new ConfigError(
        `config.inference.remote.accessTokenEnv: expected environment variable ${remote.accessTokenEnv} to be set, found it unset`,
      );
    }
    return new RemoteInference({
      logger,
      ...(remote.endpointUrl === undefined ? {} : { endpointUrl: remote.endpointUrl }),
      ...(remote.provider === undefined ? {} : { provider: remote.provider }),
      ...(accessToken === undefined ? {} : { accessToken }),
    });
  }
  return new LocalInference({
    logger,
    dtype: local.dtype,
    onTooLong: local.onTooLong,
    ...(local.modelPath === undefined ? {} : { localModelPath: local.modelPath }),
    ...(local.allowRemoteModels === undefined
      ? {}
      : { allowRemoteModels: local.allowRemoteModels }),
    ...(local.cacheDir === undefined ? {} : { cacheDir: local.cacheDir }),
    ...(local.maxInputTokens === undefined ? {} : { maxInputTokens: local.maxInputTokens }),
    ...(local.thread === undefined ? {} : { thread: local.thread }),
  });
}
