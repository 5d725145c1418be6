import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { type Actor, createActor, type InspectionEvent } from 'xstate';
import type { AuditSink } from './audit.ts';
import { type Clearance, clearanceProblem, DEFAULT_CLEARANCE } from './clearance.ts';
import { type Clock, systemClock } from './clock.ts';
import { type ConsumerCounts, consumerMachine } from './consumer-machine.ts';
import { ConsumerTelemetry } from './consumer-telemetry.ts';
import type { BodyDecryptor } from './encryption.ts';
import { ConfigError, IllegalStateError } from './errors.ts';
import type { BatchOptions, Handler } from './handler.ts';
import type { InferenceClient } from './inference.ts';
import type { JobTransition } from './job-run.ts';
import { RunningSignals } from './job-signal.ts';
import type { DeadlinePolicy, DedupeOptions } from './job-steps.ts';
import {
  type AdaptivePrefetchOptions,
  PrefetchController,
  type PrefetchDecision,
} from './prefetch-controller.ts';
import type { RelayOptions } from './relay.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';
import type { JobVerifier } from './signing.ts';
import { type TopologyOptions, topologyFor } from './topology.ts';
import { instrumentInference } from './traced-inference.ts';
import { checkPrefetch, type Transport } from './transport.ts';

export interface ConsumerOptions {
  handler: Handler;
  /** The handler's options, already validated against its `options` schema. */
  handlerOptions?: unknown;
  transport: Transport;
  inference: InferenceClient;
  logger: Logger;
  /** Unacked deliveries the broker may send at once (default 16). */
  prefetch?: number;
  /** Handler calls that may run at once (default 1: local models use every core already). */
  concurrency?: number;
  /** How long a stop waits for started jobs before aborting them (default 30 s). */
  drainTimeoutMs?: number;
  /** Names and queue options; `retry` here is ignored in favour of the policy below. */
  topology?: TopologyOptions;
  /** Overrides the handler's own retry policy, field by field. */
  retry?: Partial<RetryPolicy>;
  /** Overrides the handler's own batching, field by field. */
  batch?: Partial<BatchOptions>;
  /** Lets prefetch follow the model's speed within these bounds, starting from `prefetch`. */
  adaptivePrefetch?: AdaptivePrefetchOptions;
  deadlines?: Partial<DeadlinePolicy>;
  /** Makes jobs effectively-once across redeliveries and duplicate publishes. */
  dedupe?: DedupeOptions;
  /**
   * How long the broker lets a delivery stay unacked (RabbitMQ's `consumer_timeout`, 30 min by
   * default there): jobs that could outlast it are refused or stopped in time, and an adaptive
   * prefetch keeps its window within half of it. Absent: not enforced.
   */
  consumerTimeoutMs?: number;
  /**
   * Checks each job's signature (`@warren/security`'s `SignatureVerifier`) in the job's
   * `verifying` state; a refused job is dead-lettered and never handled. Absent: not checked.
   */
  verifier?: JobVerifier;
  /**
   * Opens encrypted job bodies (`@warren/security`'s `AesGcmDecryptor`) in the job's `verifying`
   * state, after the signature; a job it refuses is dead-lettered with its ciphertext. Absent: an
   * encrypted job is refused as `no-decryptor`.
   */
  decryptor?: BodyDecryptor;
  /**
   * What this consumer serves; default the handler's `clearance` (or `public` alone). A worker
   * config may narrow the handler's, never widen it (see {@link narrowClearance}).
   */
  clearance?: Clearance;
  /**
   * The scope whose queue this consumer takes jobs from, one of the clearance's scopes. Needed
   * when the clearance has several: a consumer reads one queue, so start one per scope.
   */
  scope?: string;
  /**
   * The broker accounts whose republished jobs (retries, deferrals) this consumer believes (see
   * relay.ts); default: the transport's own account. A `SignatureVerifier` needs the same list
   * as its `relays`, or it refuses signed retries as replays.
   */
  relay?: RelayOptions;
  /** Told every delivery's admission and every publish (`@warren/security`'s audit log). */
  audit?: AuditSink;
  clock?: Clock;
  /** Picks the jitter of retry delays (default `Math.random`). */
  random?: () => number;
}

/** One observed state change of a consumer or of one of its jobs. */
export interface TransitionEvent {
  type: 'warren.actor.transitioned';
  actor: 'consumer' | 'job';
  /** `consumer`, or the job actor's id (`job.1`, ...). */
  actorId: string;
  from: string | undefined;
  to: string;
  /** The event that caused the change. */
  cause: string;
  /** For a job: the message ids of its deliveries. */
  messageIds?: Array<string | undefined>;
}

export type TransitionListener = (event: TransitionEvent) => void;

/** How a consumer ended. */
export interface ConsumerExit {
  state: 'stopped' | 'failed';
  counts: ConsumerCounts;
  error?: unknown;
}

/**
 * A running consumer for one handler: the public face of {@link consumerMachine}. Every state
 * change of the consumer and of its jobs reaches {@link onTransition} listeners and the debug log.
 */
export class Consumer {
  readonly #actor: Actor<typeof consumerMachine>;
  readonly #listeners = new Set<TransitionListener>();
  /** The consumer's last state seen. */
  #state: string | undefined;
  readonly #logger: Logger;
  readonly #debug: boolean;
  readonly #exit: Promise<ConsumerExit>;
  readonly #controller: PrefetchController | undefined;
  readonly #telemetry: ConsumerTelemetry;
  readonly #queue: string;
  #inspection: { unsubscribe(): void } | undefined;
  #started = false;

  constructor(options: ConsumerOptions) {
    const prefetch = options.prefetch ?? 16;
    checkPrefetch(prefetch);
    this.#logger = options.logger.child({ handler: options.handler.name });
    this.#debug = this.#logger.isLevelEnabled('debug');
    const shutdown = new AbortController();
    // Running handler calls share one listener (RunningSignals); other parts may add their own,
    // a few each, and none of them is a leak worth Node's warning.
    setMaxListeners(0, shutdown.signal);
    const draining = new AbortController();
    const limiter = new PQueue({ concurrency: options.concurrency ?? 1 });
    const retry = { ...DEFAULT_RETRY_POLICY, ...options.handler.retry, ...options.retry };
    const clearance = options.clearance ?? options.handler.clearance ?? DEFAULT_CLEARANCE;
    const scope = consumedScope(clearance, options.scope);
    const topology = topologyFor(options.handler.modelType, {
      ...options.topology,
      retry,
      scope,
    });

    const batch = { maxSize: 1, maxWaitMs: 5, ...options.handler.batch, ...options.batch };
    checkBatch(batch);
    const clock = options.clock ?? systemClock;
    const controller =
      options.adaptivePrefetch === undefined
        ? undefined
        : new PrefetchController(
            { ...options.adaptivePrefetch, consumerTimeoutMs: options.consumerTimeoutMs },
            prefetch,
            clock,
          );
    this.#controller = controller;
    this.#queue = topology.queue;
    this.#telemetry = new ConsumerTelemetry(options.handler.name, topology.queue);
    this.#actor = createActor(consumerMachine, {
      input: {
        prefetch: controller?.prefetch ?? prefetch,
        controller,
        batch,
        drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
        shutdown,
        draining,
        limiter,
        observeJob: Object.assign((transition: JobTransition) => this.#observeJob(transition), {
          watching: () => this.#watched(),
        }),
        jobDeps: {
          handler: options.handler,
          handlerOptions: options.handlerOptions,
          transport: options.transport,
          topology,
          inference: instrumentInference(options.inference),
          logger: this.#logger,
          shutdown: shutdown.signal,
          signals: new RunningSignals(shutdown.signal),
          onWorkerFault: () => shutdown.abort(),
          draining: draining.signal,
          schedule: (task) => limiter.add(task),
          clock,
          retry,
          random: options.random ?? Math.random,
          telemetry: this.#telemetry,
          deadlines: { skewMs: 0, onExpired: 'dead-letter', ...options.deadlines },
          ...(options.dedupe === undefined ? {} : { dedupe: options.dedupe }),
          ...(options.verifier === undefined ? {} : { verifier: options.verifier }),
          ...(options.decryptor === undefined ? {} : { decryptor: options.decryptor }),
          clearance,
          ...relayOption(options),
          ...(options.audit === undefined ? {} : { audit: options.audit }),
          ...(options.consumerTimeoutMs === undefined
            ? {}
            : { consumerTimeoutMs: options.consumerTimeoutMs }),
        },
      },
    });
    // Inspection costs a little on every event xstate handles: only while someone watches.
    if (this.#debug) this.#watch();
    this.#exit = new Promise((resolve) => {
      this.#actor.subscribe({
        complete: () => resolve(this.#exitOf()),
        error: (error) => resolve({ state: 'failed', counts: this.counts, error }),
      });
    });
  }

  /** The queue this consumer reads: its handler's model type and scope. */
  get queue(): string {
    return this.#queue;
  }

  /** The consumer's lifecycle state: `idle`, `connecting`, `consuming`, `draining`, ... */
  get state(): string {
    return topState(this.#actor.getSnapshot().value);
  }

  /** The prefetch the consumer works with now (1 while redelivered jobs come first). */
  get prefetch(): number {
    const { probation, prefetch } = this.#actor.getSnapshot().context;
    return probation ? 1 : prefetch;
  }

  /** The adaptive prefetch's recent decisions, oldest first; empty when it is off. */
  get prefetchDecisions(): readonly PrefetchDecision[] {
    return this.#controller?.decisions ?? [];
  }

  get counts(): ConsumerCounts {
    return { ...this.#actor.getSnapshot().context.counts };
  }

  /** Resolves when the consumer has stopped or failed. */
  get exited(): Promise<ConsumerExit> {
    return this.#exit;
  }

  onTransition(listener: TransitionListener): () => void {
    this.#listeners.add(listener);
    this.#watch();
    return () => {
      this.#listeners.delete(listener);
      if (!this.#watched()) {
        this.#inspection?.unsubscribe();
        this.#inspection = undefined;
      }
    };
  }

  #watch(): void {
    if (this.#inspection !== undefined) return;
    // Watching from the middle of a run: the next change is reported from where it stands now.
    if (this.#started) this.#state = stateName(this.#actor.getSnapshot().value);
    this.#inspection = this.#actor.system.inspect((event) => this.#inspect(event));
  }

  /** Connects and subscribes; resolves once consuming, rejects if that fails. */
  async start(): Promise<void> {
    if (this.state !== 'idle') {
      throw new IllegalStateError(`start: expected state idle, found ${this.state}`);
    }
    this.#started = true;
    this.#actor.start();
    const unwatch = this.#telemetry.watchPrefetch(() => this.prefetch);
    void this.#exit.then(unwatch);
    this.#actor.send({ type: 'warren.consumer.start' });

    await new Promise<void>((resolve, reject) => {
      const subscription = this.#actor.subscribe((snapshot) => {
        const state = topState(snapshot.value);
        if (state === 'connecting') return;
        subscription.unsubscribe();
        if (state === 'failed') reject(snapshot.context.error);
        else resolve();
      });
    });
  }

  /** Stops consuming, lets started jobs finish (up to the drain timeout) and resolves. */
  async stop(): Promise<ConsumerExit> {
    if (this.state === 'idle') {
      this.#started = true;
      this.#actor.start();
    }
    this.#actor.send({ type: 'warren.consumer.stop' });
    return this.#exit;
  }

  #exitOf(): ConsumerExit {
    const snapshot = this.#actor.getSnapshot();
    const state = topState(snapshot.value) === 'failed' ? 'failed' : 'stopped';
    const { error, counts } = snapshot.context;
    return error === undefined ? { state, counts: { ...counts } } : { state, counts, error };
  }

  #inspect(event: InspectionEvent): void {
    // Microsteps show the states a macrostep passes through; snapshots show where it rests.
    if (event.type !== '@xstate.snapshot' && event.type !== '@xstate.microstep') return;
    // Nobody watching: keep the per-delivery path free of this work.
    if (!this.#watched()) return;
    // Only the consumer's own snapshots: its invoked promises have none worth reporting.
    if (event.actorRef.sessionId !== event.rootId) return;
    const snapshot = event.snapshot as { value?: unknown };
    if (snapshot.value === undefined) return;

    const to = stateName(snapshot.value);
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#report({
      type: 'warren.actor.transitioned',
      actor: 'consumer',
      actorId: 'consumer',
      from,
      to,
      cause: event.event.type,
    });
  }

  #observeJob({ jobId, from, to, cause, items }: JobTransition): void {
    this.#report({
      type: 'warren.actor.transitioned',
      actor: 'job',
      actorId: jobId,
      from,
      to,
      cause,
      messageIds: items.map((item) => item.delivery.properties.messageId),
    });
  }

  #watched(): boolean {
    return this.#listeners.size > 0 || this.#debug;
  }

  #report(transition: TransitionEvent): void {
    if (this.#debug) this.#logger.debug(transition, 'actor transitioned');
    for (const listener of this.#listeners) {
      try {
        listener(transition);
      } catch (error) {
        // A listener's bug must not stop the consumer or fail a job.
        this.#logger.warn({ err: error }, 'transition listener threw');
      }
    }
  }
}

function checkBatch(batch: BatchOptions): void {
  if (!Number.isInteger(batch.maxSize) || batch.maxSize < 1) {
    throw new RangeError(
      `batch.maxSize: expected an integer of at least 1, found ${batch.maxSize}`,
    );
  }
  if (!(batch.maxWaitMs >= 0)) {
    throw new RangeError(`batch.maxWaitMs: expected 0 or more, found ${batch.maxWaitMs}`);
  }
  if (batch.maxTokens !== undefined && !(batch.maxTokens >= 1)) {
    throw new RangeError(`batch.maxTokens: expected at least 1, found ${batch.maxTokens}`);
  }
}

function topState(value: unknown): string {
  return typeof value === 'string' ? value : Object.keys(value as object)[0]!;
}

/** `draining.finishing` for nested states, the plain name otherwise. */
function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  const [parent, child] = Object.entries(value as Record<string, unknown>)[0]!;
  return `${parent}.${stateName(child)}`;
}

/** The scope a consumer with `clearance` reads, checked; see {@link ConsumerOptions.scope}. */
function consumedScope(clearance: Clearance, scope: string | undefined): string {
  const problem = clearanceProblem(clearance);
  if (problem !== undefined) throw new ConfigError(`clearance.${problem}`);
  if (scope === undefined) {
    if (clearance.scopes.length === 1) return clearance.scopes[0]!;
    throw new ConfigError(
      `scope: the clearance covers ${clearance.scopes.join(', ')}; a consumer reads one ` +
        "scope's queue, so start one per scope and name it",
    );
  }
  if (!clearance.scopes.includes(scope)) {
    throw new ConfigError(
      `scope: expected one of the cleared scopes (${clearance.scopes.join(', ')}), found ${JSON.stringify(scope)}`,
    );
  }
  return scope;
}

/**
 * The relay options a consumer runs with: as given, else trusting the transport's own account
 * (a fleet of workers sharing one account), so that its own republished jobs are told from
 * replays. Without an account, nothing is stamped and a verifier treats republishes as replays.
 */
function relayOption(options: ConsumerOptions): { relay?: RelayOptions } {
  if (options.relay !== undefined) return { relay: options.relay };
  const account = options.transport.account;
  return account === undefined ? {} : { relay: { trusted: [account] } };
}
