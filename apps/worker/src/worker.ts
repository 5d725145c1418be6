import {
  type ChildHealth,
  type ChildSpec,
  Consumer,
  type ConsumerCounts,
  type ConsumerExit,
  type DedupeStore,
  type InferenceClient,
  instrumentSupervisor,
  instrumentTransport,
  Supervisor,
  type Transport,
} from '@warren/core';
import { LocalInference } from '@warren/inference/local-inference';
import type { PrometheusMetrics } from '@warren/telemetry';
import type { Logger } from 'pino';
import { openAuditLog } from './audit.ts';
import { clearanceFor, relayFor } from './clearance.ts';
import type { WorkerConfig } from './config.ts';
import { ReachabilityTracked } from './dedupe-reachability.ts';
import { type HealthServer, serveHealth } from './health-server.ts';
import { createDedupe, createInference, createTransport, loadHandlers } from './resources.ts';
import {
  createDecryptor,
  createReplayGuard,
  createVerifier,
  type WorkerReplayGuard,
} from './signing.ts';

export interface WorkerOptions {
  config: WorkerConfig;
  logger: Logger;
  /** Replaces the RabbitMQ transport built from the config (tests, embedded brokers). */
  transport?: Transport;
  /** Replaces the inference client built from the config. */
  inference?: InferenceClient;
  /** Replaces the dedupe store named by the config (for example one shared by two workers). */
  dedupeStore?: DedupeStore;
  /** Where AMQP_URL, access tokens and signing keys are read from (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Served as `/metrics` beside the health endpoints (`startTelemetry`'s `prometheus`). */
  metrics?: PrometheusMetrics;
  /**
   * Stops the worker when aborted, as {@link Worker.stop} does, from the moment `start` is called:
   * an abort while handlers' setups run or wait to be retried cancels the retries, drains the
   * consumers already started, and `start` resolves with the stopped worker.
   */
  signal?: AbortSignal;
}

/** How a worker ended: `ok` unless a consumer failed for good or the supervisor escalated. */
export interface WorkerExit {
  ok: boolean;
  /** Why the supervisor gave up, or what the worker was stopped for, when either happened. */
  error?: unknown;
  consumers: Array<{ handler: string } & ConsumerExit>;
}

/** What `/livez` and `/readyz` answer from (see {@link Worker.health}). */
export interface WorkerHealth {
  /** False once the worker stops, or when a handler has had no consumer for the grace time. */
  live: boolean;
  /**
   * Every handler's consumer is consuming on a connected transport, and the dedupe store, if
   * it is outside the process, answered its last call.
   */
  ready: boolean;
  connection: 'connected' | 'recovering' | 'lost';
  /** Whether the last call to a dedupe store outside the process (Redis) reached it; absent without one. */
  dedupeStore?: 'reachable' | 'unreachable';
  consumers: Array<ChildHealth & { consumer: string | undefined }>;
}

/** Time a stop allows beyond the drain timeout before it closes channels under running jobs. */
const STOP_GRACE_MS = 5_000;
/** The period of the timer that holds the process open while the worker runs: its longest. */
const KEEP_ALIVE_MS = 2 ** 31 - 1;

/**
 * A worker process's runtime: one consumer actor per handler plugin, sharing one transport and
 * one inference client, kept running by a {@link Supervisor}. A consumer that crashes (its
 * handler's setup failed, the broker cancelled it, a publish failed) is started again after a
 * backoff while the others go on; when the restart budget is spent, or the transport gives up
 * on the broker, the worker stops and exits not ok so that the platform restarts the process.
 */
export class Worker {
  readonly #supervisor: Supervisor<Consumer>;
  /** Each handler's latest consumer, running or not. */
  readonly #latest: Map<string, Consumer>;
  /** What each handler's earlier consumers (before a restart) counted. */
  readonly #earlier: Map<string, ConsumerCounts>;
  /** Since when each handler has had no consuming consumer; absent while it has one. */
  readonly #idleSince: Map<string, number>;
  /** Since when the broker connection has been down; undefined while it is up. */
  #downSince: number | undefined;
  readonly #transport: Transport;
  readonly #dedupeStore: DedupeStore | undefined;
  readonly #trackedStore: ReachabilityTracked | undefined;
  /** Remembers signed jobs' ids; a Redis one holds a connection to close. */
  readonly #replayGuard: WorkerReplayGuard | undefined;
  /** The inference client the worker built (one passed in is the caller's to close). */
  readonly #inference: LocalInference | undefined;
  readonly #logger: Logger;
  readonly #config: WorkerConfig;
  #connection: WorkerHealth['connection'] = 'connected';
  #health: HealthServer | undefined;
  #stopping: Promise<WorkerExit> | undefined;
  readonly #exited: Promise<WorkerExit>;
  #resolveExited!: (exit: WorkerExit) => void;
  /**
   * Holds the process open from the start until the worker lets go of what it opened. Its timers
   * do not (a job's retry delay must not keep a stopped process alive), and while a handler's
   * setup is retried the broker connection may not be open yet: without this, a process whose
   * setup kept failing ended in the backoff, with `await Worker.start()` still pending.
   */
  readonly #keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);

  private constructor(parts: {
    supervisor: Supervisor<Consumer>;
    latest: Map<string, Consumer>;
    earlier: Map<string, ConsumerCounts>;
    idleSince: Map<string, number>;
    transport: Transport;
    dedupeStore: DedupeStore | undefined;
    /** The store the consumers use, when its reachability is tracked. */
    trackedStore: ReachabilityTracked | undefined;
    replayGuard: WorkerReplayGuard | undefined;
    inference: LocalInference | undefined;
    config: WorkerConfig;
    logger: Logger;
  }) {
    this.#supervisor = parts.supervisor;
    this.#latest = parts.latest;
    this.#earlier = parts.earlier;
    this.#idleSince = parts.idleSince;
    this.#transport = parts.transport;
    this.#dedupeStore = parts.dedupeStore;
    this.#trackedStore = parts.trackedStore;
    this.#replayGuard = parts.replayGuard;
    this.#inference = parts.inference;
    this.#config = parts.config;
    this.#logger = parts.logger;
    this.#exited = new Promise((resolve) => {
      this.#resolveExited = resolve;
    });
    // Crashes, restarts, escalations and connection events as metrics (no-ops without an SDK).
    const stopRecording = [
      instrumentSupervisor(this.#supervisor),
      instrumentTransport(this.#transport),
    ];
    void this.#exited.then(() => {
      for (const stop of stopRecording) stop();
    });
    void this.#supervisor.exited.then((exit) => {
      if (exit.state !== 'escalated' || this.#stopping) return;
      this.#logger.error({ err: exit.error }, 'supervisor escalated; stopping the worker');
      void this.stop();
    });
    this.#transport.onConnectionEvent?.((event) => {
      if (event.type === 'lost' || event.type === 'recovering') {
        this.#connection = 'recovering';
        this.#downSince ??= Date.now();
      } else if (event.type === 'recovered') {
        this.#connection = 'connected';
        this.#downSince = undefined;
      } else if (event.type === 'gave-up') {
        this.#connection = 'lost';
        void this.#supervisor.escalate(event.cause);
      }
    });
  }

  /**
   * Loads every plugin and starts one supervised consumer per handler, each after its handler's
   * setup (a model load, typically) has succeeded: until then it takes no job. A setup or start
   * that fails is retried like a crash; the start rejects when the restart budget runs out.
   */
  static async start(options: WorkerOptions): Promise<Worker> {
    const { config, logger } = options;
    const env = options.env ?? process.env;
    const loaded = await loadHandlers(config);

    const inference = options.inference ?? (await createInference(config, env, logger));
    // Its model threads must end for the process to exit cleanly.
    const ownInference =
      options.inference === undefined && inference instanceof LocalInference
        ? inference
        : undefined;
    // Opened once, for the consumers' admissions and publishes and the transport's rotations.
    const audit = openAuditLog(config, logger);
    const transport = options.transport ?? (await createTransport(config, env, logger, audit));
    const relay = relayFor(config, transport);
    const replayGuard = await createReplayGuard(config, env);
    const verifier = await createVerifier(config, env, relay.trusted, replayGuard);
    const decryptor = await createDecryptor(config, env);
    const dedupe = await createDedupe(config, env, options.dedupeStore);
    // A store the caller passed in may be shared with other workers: the caller closes it.
    const ownStore = options.dedupeStore === undefined ? dedupe?.store : undefined;

    const latest = new Map<string, Consumer>();
    // What each handler's consumers did before their latest restart, for the final counts.
    const earlier = new Map<string, ConsumerCounts>();
    // One consumer per handler and cleared scope: each scope has a queue of its own.
    const consumed = loaded.flatMap((plugin, index) => {
      const entry = config.handlers[index]!;
      const clearance = clearanceFor(plugin.handler, entry, index);
      const setup = once(() =>
        plugin.handler.setup?.({
          logger: logger.child({ handler: plugin.handler.name }),
          inference,
          options: plugin.options,
        }),
      );
      return clearance.scopes.map((scope) => ({
        ...plugin,
        entry,
        clearance,
        scope,
        setup,
        // A handler with one scope keeps its own name; with several, each consumer is told apart.
        id: clearance.scopes.length === 1 ? plugin.handler.name : `${plugin.handler.name}@${scope}`,
      }));
    });
    // No handler has a consumer yet: the liveness grace runs from now.
    const startedAt = Date.now();
    const idleSince = new Map(consumed.map(({ id }) => [id, startedAt]));
    const children = consumed.map(
      ({
        handler,
        options: handlerOptions,
        entry,
        clearance,
        scope,
        setup,
        id,
      }): ChildSpec<Consumer> => {
        const handlerLogger = logger.child({ handler: handler.name });
        return {
          id,
          start: async () => {
            await setup();
            // A setup that ended after the worker was told to stop starts no consumer.
            if (supervisor.stopping) throw new Error('the worker is stopping');
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
              consumerTimeoutMs: config.broker.consumerTimeoutMs,
              clearance,
              scope,
              relay,
              ...(verifier === undefined ? {} : { verifier }),
              ...(decryptor === undefined ? {} : { decryptor }),
              ...(audit === undefined ? {} : { audit }),
            });
            const previous = latest.get(id);
            if (previous !== undefined)
              earlier.set(id, sumCounts(earlier.get(id), previous.counts));
            latest.set(id, consumer);
            await consumer.start();
            idleSince.delete(id);
            void consumer.exited.then(() => {
              if (!idleSince.has(id)) idleSince.set(id, Date.now());
            });
            handlerLogger.info(
              {
                modelType: handler.modelType,
                // Redelivered jobs come first at prefetch 1; the configured one follows.
                prefetch: consumer.prefetch,
                configuredPrefetch: entry.prefetch,
                queue: consumer.queue,
              },
              'consumer started',
            );
            return consumer;
          },
        };
      },
    );
    const supervisor = new Supervisor(children, {
      backoff: config.supervisor.backoff,
      budget: config.supervisor.budget,
      logger,
    });
    const worker = new Worker({
      supervisor,
      latest,
      earlier,
      idleSince,
      transport,
      dedupeStore: ownStore,
      trackedStore: dedupe?.store instanceof ReachabilityTracked ? dedupe.store : undefined,
      replayGuard,
      inference: ownInference,
      config,
      logger,
    });
    const { signal } = options;
    try {
      // Up before the consumers, so that probes see a worker loading its models as live.
      const { port, host } = config.health;
      if (port !== undefined) {
        const health = () => worker.health();
        worker.#health = await serveHealth(health, { port, host }, logger, options.metrics);
      }
      // From here on everything the worker opens is its to close: an abort stops it.
      if (signal !== undefined) worker.#stopOn(signal);
      // Asked to stop while starting is not a failure: the start ends with the stop's drain.
      const starting = supervisor.start().then(
        () => 'started' as const,
        (error: unknown) => {
          if (signal?.aborted) return 'aborted' as const;
          throw error;
        },
      );
      // A stop waits for a setup still running only as long as its drain timeout: once the
      // worker has stopped for an abort, the start is over, whatever that setup still does.
      const stopped = worker.exited.then(() => (signal?.aborted ? ('aborted' as const) : starting));
      if ((await Promise.race([starting, stopped])) === 'aborted') await worker.exited;
    } catch (error) {
      await worker.#release();
      throw error;
    }
    return worker;
  }

  /** Where `/livez`, `/readyz` and `/metrics` are served, when `health.port` is set. */
  get healthAddress(): { host: string; port: number } | undefined {
    return this.#health?.address;
  }

  /** Each handler's current consumer (the latest one started, while it restarts). */
  get consumers(): ReadonlyArray<{ handler: string; consumer: Consumer }> {
    return [...this.#latest].map(([handler, consumer]) => ({ handler, consumer }));
  }

  /** Whether the worker serves every queue it should (`/livez`, `/readyz`). */
  health(now = Date.now()): WorkerHealth {
    const graceMs = this.#config.health.livenessGraceMs;
    const connected = this.#connection === 'connected';
    const consumers = this.#supervisor.health().map((child) => ({
      ...child,
      consumer: this.#latest.get(child.id)?.state,
    }));
    // How long its queue has had no consumer of ours: its own, or the connection's, downtime.
    const downFor = (id: string) =>
      Math.max(
        now - (this.#idleSince.get(id) ?? now),
        this.#downSince === undefined ? 0 : now - this.#downSince,
      );
    const stopped = this.#stopping !== undefined || this.#supervisor.stopping;
    const storeReachable = this.#trackedStore?.reachable ?? true;
    return {
      live:
        !stopped &&
        this.#connection !== 'lost' &&
        consumers.every(({ id }) => downFor(id) <= graceMs),
      ready:
        !stopped &&
        connected &&
        storeReachable &&
        consumers.every(({ id }) => !this.#idleSince.has(id)),
      connection: this.#connection,
      ...(this.#trackedStore === undefined
        ? {}
        : { dedupeStore: storeReachable ? 'reachable' : 'unreachable' }),
      consumers,
    };
  }

  /**
   * Stops consuming, lets started jobs finish (up to the drain timeout, then aborts them and
   * requeues their messages), closes the transport. Safe to call more than once; the first call
   * decides. `failure`: what made the process stop (an uncaught exception); the exit is then not
   * ok, however cleanly the consumers drained.
   */
  stop(failure?: unknown): Promise<WorkerExit> {
    this.#stopping ??= this.#stop(failure).then((exit) => {
      this.#resolveExited(exit);
      return exit;
    });
    return this.#stopping;
  }

  /** Resolves once the worker has stopped, whether asked to or because a consumer failed. */
  get exited(): Promise<WorkerExit> {
    return this.#exited;
  }

  async #stop(failure: unknown): Promise<WorkerExit> {
    this.#logger.info({ consumers: this.#latest.size }, 'worker draining');
    const limit = this.#config.shutdown.drainTimeoutMs + STOP_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), limit);
    });
    const outcome = await Promise.race([this.#supervisor.stop(), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#logger.error(
        { limitMs: limit },
        "jobs or a handler's setup did not finish in time; closing under them",
      );
    }
    await this.#release();

    const consumers = await Promise.all(
      this.consumers.map(async ({ handler, consumer }) => {
        // Past the time limit, a consumer that had drained still counts as stopped.
        const exit =
          outcome === 'timeout'
            ? await Promise.race([
                consumer.exited,
                { state: 'failed' as const, counts: consumer.counts },
              ])
            : await consumer.exited;
        return { handler, ...exit, counts: sumCounts(this.#earlier.get(handler), exit.counts) };
      }),
    );
    const escalated = outcome !== 'timeout' && outcome.state === 'escalated';
    const error = failure ?? (escalated ? outcome.error : undefined);
    const exit: WorkerExit = {
      ok: error === undefined && consumers.every((c) => c.state === 'stopped'),
      ...(error === undefined ? {} : { error }),
      consumers,
    };
    this.#logger.info(
      { ok: exit.ok, counts: Object.fromEntries(consumers.map((c) => [c.handler, c.counts])) },
      'worker stopped',
    );
    return exit;
  }

  /** Stops the worker once `signal` aborts, or now if it has; forgets the signal on exit. */
  #stopOn(signal: AbortSignal): void {
    const stop = () => void this.stop();
    if (signal.aborted) {
      stop();
      return;
    }
    signal.addEventListener('abort', stop, { once: true });
    void this.#exited.then(() => signal.removeEventListener('abort', stop));
  }

  /** Closes what the worker opened. */
  async #release(): Promise<void> {
    try {
      await this.#health?.close();
      await this.#transport.close();
      await this.#inference?.close();
      this.#trackedStore?.stopProbing();
      await this.#dedupeStore?.close();
      await this.#replayGuard?.close?.();
    } finally {
      clearInterval(this.#keepAlive);
    }
  }
}

/** Counts of a handler's consumers added up, across restarts. */
function sumCounts(before: ConsumerCounts | undefined, now: ConsumerCounts): ConsumerCounts {
  if (before === undefined) return now;
  const sum = { ...now };
  for (const key of Object.keys(sum) as Array<keyof ConsumerCounts>) sum[key] += before[key];
  return sum;
}

/** Runs `task` the first time it is called; later calls wait for that run, or run it again if it failed. */
function once(task: () => Promise<void> | undefined): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => {
    done ??= Promise.resolve(task()).catch((error: unknown) => {
      done = undefined;
      throw error;
    });
    return done;
  };
}
