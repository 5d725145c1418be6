import type { Logger } from 'pino';
import type { AuditSink } from './audit.ts';
import type { Clearance } from './clearance.ts';
import type { Clock } from './clock.ts';
import type { ConsumerTelemetry, HandlerTrace, ItemTrace } from './consumer-telemetry.ts';
import type { DedupeStore } from './dedupe.ts';
import { type BodyDecryptor, isEncrypted } from './encryption.ts';
import { decodeEnvelope, decodeJsonBody, type JobEnvelope } from './envelope.ts';
import {
  ConsumerTimeoutError,
  DeadlineExceededError,
  HandlerError,
  InvalidResultError,
  isWorkerFault,
  MalformedMessageError,
  type PublishError,
  SchemaViolationError,
  toWarrenError,
  type WarrenError,
} from './errors.ts';
import type { Handler, HandlerContext } from './handler.ts';
import type { InferenceClient } from './inference.ts';
import { type Prepared, prepare, release } from './job-admission.ts';
import type { JobSignal, RunningSignals } from './job-signal.ts';
import type { RelayOptions } from './relay.ts';
import type { RetryPolicy } from './retry.ts';
import type { JobVerifier } from './signing.ts';
import { runInContext } from './trace-propagation.ts';
import type { Delivery, QueueTopology, Transport } from './transport.ts';
import { describeIssues } from './validation.ts';

/**
 * The per-delivery steps of a job: decode, validate, handle, then publish and settle (see
 * job-settle.ts). Each step takes the whole list of items, so that a batch of deliveries moves
 * through them together; an item that fails carries its error on and never fails its neighbours.
 */
export interface JobItem {
  readonly delivery: Delivery;
  /**
   * When its batch's first delivery reached the consumer (clock time): the broker's consumer
   * timeout runs from about then for the whole batch.
   */
  readonly receivedAt: number;
  envelope?: JobEnvelope;
  /**
   * Its body is sealed (`x-warren-encryption`): left undecoded in `decoding`, decrypted and then
   * decoded in `verifying`. Only {@link body} ever holds the plaintext, and only as parsed JSON.
   */
  encrypted?: boolean;
  body?: unknown;
  input?: unknown;
  /** The handler's result, serialised. */
  result?: Buffer;
  failure?: WarrenError;
  /** Shutdown aborted the handler: the job goes back to the queue, not counted as a failure. */
  interrupted?: boolean;
  /** The dedupe store says its result was published already: ack without running. */
  duplicate?: boolean;
  /** Another worker holds the job now: it waits in a delay queue, its attempt unchanged. */
  deferred?: boolean;
  /** This worker claimed the job in the dedupe store. */
  claimed?: boolean;
  /** The key that signed it, when a verifier accepted it. */
  keyId?: string;
  /** Its verifier failed (not refused): a retry must be verified as if it were new. */
  unverified?: boolean;
  /** How long the handler call that ran this item took (real time, ms). */
  handleMs?: number;
  /** Set when publishing its result, retry or dead letter failed. */
  publishFailure?: PublishError;
  outcome?: JobOutcome;
  /** Its place in the job's trace; absent while no tracer is registered. */
  trace?: ItemTrace;
}

export type JobOutcome =
  | 'succeeded'
  | 'retried'
  | 'deferred'
  | 'dead-lettered'
  | 'dropped'
  | 'duplicate'
  | 'requeued';

/** What to do with a job whose deadline has passed, besides not running it. */
export interface DeadlinePolicy {
  /** Clock difference between producers and workers that is tolerated (ms). */
  skewMs: number;
  onExpired: 'dead-letter' | 'drop';
}

export interface DedupeOptions {
  store: DedupeStore;
  /** How long a claim holds before another worker may take the job (a crashed worker's). */
  leaseMs: number;
  /** How long a published result keeps a job id from running again. */
  ttlMs: number;
}

/** What the steps need from the consumer that runs them. */
export interface JobDeps {
  handler: Handler;
  handlerOptions: unknown;
  transport: Transport;
  topology: QueueTopology;
  inference: InferenceClient;
  logger: Logger;
  /**
   * Aborts when the worker's drain deadline passes, or when the consumer fails: running handlers
   * are abandoned.
   */
  shutdown: AbortSignal;
  /**
   * Called the moment a handler fails with a worker fault (fate `crash`): aborts `shutdown` at
   * once, before the consumer has heard, so that no job waiting for a slot starts meanwhile.
   */
  onWorkerFault?(): void;
  /** Aborts when draining starts: jobs not yet started go back to the queue. */
  draining: AbortSignal;
  /** The signals of running handler calls, aborted together at shutdown. */
  signals: RunningSignals;
  /** Runs a handler call within the consumer's concurrency limit. */
  schedule<T>(task: () => Promise<T>): Promise<T>;
  clock: Clock;
  retry: RetryPolicy;
  /** Picks the jitter slot of a retry delay. */
  random(): number;
  deadlines: DeadlinePolicy;
  dedupe?: DedupeOptions;
  /**
   * How long the broker lets a delivery stay unacked before it closes the channel (RabbitMQ's
   * `consumer_timeout`); undefined when it does not. See {@link consumerTimeLeft}.
   */
  consumerTimeoutMs?: number;
  /** Checks each job's signature before it is validated; absent, jobs are not verified. */
  verifier?: JobVerifier;
  /** Opens encrypted bodies in `verifying`; absent, an encrypted job is refused. */
  decryptor?: BodyDecryptor;
  /** The scopes, tenants and producers this consumer serves; checked in `verifying`. */
  clearance: Clearance;
  /** The worker's broker account, and the accounts whose republished jobs it believes. */
  relay?: RelayOptions;
  /** Told each delivery's admission decision and each publish; absent, nothing is audited. */
  audit?: AuditSink;
  /** The consumer's traces and metrics; absent, jobs run unobserved. */
  telemetry?: ConsumerTelemetry;
}

export function toItems(deliveries: readonly Delivery[], receivedAt: number): JobItem[] {
  return deliveries.map((delivery) => ({ delivery, receivedAt }));
}

/** Whether an item is still on its way to the handler. */
export function isLive(item: JobItem): boolean {
  return item.failure === undefined && !item.interrupted && !item.duplicate && !item.deferred;
}

export function decodeItems(items: JobItem[], deps: JobDeps): void {
  for (const item of items) {
    try {
      const envelope = decodeEnvelope(item.delivery.properties);
      item.envelope = envelope;
      if (envelope.modelType !== deps.handler.modelType) {
        throw new MalformedMessageError(
          'invalid-envelope',
          `x-warren-model-type: expected ${deps.handler.modelType}, found ${envelope.modelType}`,
        );
      }
      // A sealed body is not JSON yet: it is decrypted, then decoded, once its signature held.
      if (isEncrypted(item.delivery.properties)) item.encrypted = true;
      // A worker that requires encryption refuses a plaintext job as such, whatever its body.
      else if (deps.decryptor?.required !== true) {
        item.body = decodeJsonBody(item.delivery.body, envelope.contentType);
      }
    } catch (error) {
      item.failure = toWarrenError(error, (message, cause) => new HandlerError(message, { cause }));
    }
  }
}

export function validateItems(items: JobItem[], deps: JobDeps): void {
  for (const item of items) {
    if (!isLive(item)) continue;
    const parsed = deps.handler.input.safeParse(item.body, { reportInput: true });
    if (parsed.success) item.input = parsed.data;
    else item.failure = new SchemaViolationError(describeIssues(parsed.error, { root: 'input' }));
  }
}

/**
 * Runs the handler for the live items: one `handleBatch` call for all of them when the handler
 * has one (and there is more than one item, or no `handle`), else `handle` for each.
 */
export async function handleItems(items: JobItem[], deps: JobDeps): Promise<void> {
  const ready: Prepared[] = [];
  for (const item of items) {
    if (!isLive(item)) continue;
    const prepared = await prepare(item, deps);
    if (prepared !== undefined) ready.push(prepared);
  }
  const { handle, handleBatch } = deps.handler;
  if (handleBatch !== undefined && (ready.length > 1 || handle === undefined)) {
    await runGuarded(ready, deps, (signal) => runBatch(ready, signal, deps), 'batch');
  } else if (ready.length === 1) {
    // The common case, one delivery a job: no array of promises to wait for.
    await runSingle(ready[0]!, deps);
  } else {
    await Promise.all(ready.map((one) => runSingle(one, deps)));
  }
}

function runSingle(one: Prepared, deps: JobDeps): Promise<void> {
  return runGuarded([one], deps, (signal) => runOne(one, signal, deps), 'one');
}

/**
 * Runs `call` for a group of items within the concurrency limit, with a signal that aborts at
 * shutdown and when the last of their deadlines passes, and records each item's outcome. `call`
 * answers with one output per item (`batch`), or with the output of its only item (`one`).
 */
async function runGuarded(
  group: Prepared[],
  deps: JobDeps,
  call: (signal: JobSignal) => Promise<unknown>,
  answers: 'batch' | 'one',
): Promise<void> {
  if (group.length === 0) return;
  // The last of the deadlines (none if any item has none), and the first consumer timeout.
  let remaining = Number.NEGATIVE_INFINITY;
  let timeoutLeft = Number.POSITIVE_INFINITY;
  for (const one of group) {
    remaining = Math.max(remaining, one.remaining ?? Number.POSITIVE_INFINITY);
    timeoutLeft = Math.min(timeoutLeft, one.timeoutLeft ?? Number.POSITIVE_INFINITY);
  }
  const stopAfter = Math.min(remaining, timeoutLeft);
  let expired: Expiry | undefined;
  const signal = deps.signals.open();
  const timer =
    stopAfter === Number.POSITIVE_INFINITY
      ? undefined
      : deps.clock.setTimer(() => {
          expired = stopAfter === remaining ? 'deadline' : 'consumer-timeout';
          signal.abort(new DOMException('This operation was aborted', 'AbortError'));
        }, stopAfter);
  let started: number | undefined;
  let handling: HandlerTrace | undefined;
  let failed: { item: JobItem; thrown: unknown } | undefined;
  try {
    const outputs = await deps.schedule(async () => {
      // Waiting for a slot is not a start: a job still waiting when draining begins goes back.
      // Nor is it once the consumer failed: its handler must not start outside the limit.
      if (deps.draining.aborted || deps.shutdown.aborted) throw NOT_STARTED;
      started = performance.now();
      handling = deps.telemetry?.handlerStarted(group[0]!.item, group.length);
      // Inside the handler span's context, the handler sees the job's baggage and its own spans
      // (and its inference calls') nest under it.
      let output: unknown;
      try {
        // Plugins are plain JavaScript: a handler may throw before returning a promise, or
        // return a plain value; both are taken as an async function's would be.
        const running =
          handling === undefined
            ? call(signal)
            : runInContext(handling.context, () => call(signal));
        output = await signal.race(Promise.resolve(running));
      } catch (error) {
        // A worker fault stops the consumer's other jobs now, inside this slot: once it is
        // free, the next waiting job would start before the consumer has heard of the fault.
        if (isWorkerFault(error)) deps.onWorkerFault?.();
        throw error;
      }
      const handleMs = performance.now() - started;
      for (const { item } of group) item.handleMs = handleMs;
      return output;
    });
    if (answers === 'one') settleOutput(group[0]!.item, outputs);
    else {
      const list = outputs as unknown[];
      for (const [index, { item }] of group.entries()) settleOutput(item, list[index]);
    }
  } catch (error) {
    for (const { item } of group) failItem(item, error, expired, deps);
    failed = { item: group[0]!.item, thrown: error };
  } finally {
    timer?.cancel();
    deps.signals.close(signal);
  }
  if (started !== undefined) {
    deps.telemetry?.handlerFinished(handling, performance.now() - started, failed);
  }
  for (const { item } of group) if (item.result === undefined) await release(item, deps);
}

function settleOutput(item: JobItem, output: unknown): void {
  if (output instanceof Error) {
    item.failure = toWarrenError(output, (message, cause) => new HandlerError(message, { cause }));
    return;
  }
  try {
    item.result = serialiseResult(output);
  } catch (error) {
    item.failure = toWarrenError(error, (message, cause) => new HandlerError(message, { cause }));
  }
}

/** What stopped a handler before it finished. */
type Expiry = 'deadline' | 'consumer-timeout';

function failItem(item: JobItem, error: unknown, expired: Expiry | undefined, deps: JobDeps): void {
  // A worker fault stays one even though it aborted the shutdown signal itself.
  const fault = isWorkerFault(error);
  if (error === NOT_STARTED || (deps.shutdown.aborted && !fault)) item.interrupted = true;
  else if (fault) item.failure = error;
  else if (expired === 'deadline') {
    item.failure = new DeadlineExceededError('deadline passed while the handler ran', {
      cause: error,
    });
  } else if (expired === 'consumer-timeout') {
    item.failure = new ConsumerTimeoutError(
      `its batch had been held ${Math.round(deps.clock.now() - item.receivedAt)} ms since its ` +
        'first delivery arrived (waiting, then in its handler), near the ' +
        `${deps.consumerTimeoutMs} ms the broker allows a delivery unacked (consumer timeout): ` +
        'the handler was stopped before the broker would close the channel',
      { cause: error },
    );
  } else {
    item.failure = toWarrenError(error, (message, cause) => new HandlerError(message, { cause }));
  }
}

const NOT_STARTED = Symbol('not started');

/** What a {@link CallContext} keeps for its getters: one object per call, never frozen with it. */
interface CallState {
  readonly signal: JobSignal;
  readonly deps: JobDeps;
  logger: Logger | undefined;
}

const CALL_STATE = Symbol('call state');

/**
 * The context of one `handle` call. Its logger and its `AbortSignal` are made on first read, since
 * most handlers read neither. A class, with the getters on its prototype, and not an object
 * literal with getters of its own: with the literal, much of what a job touched survived the
 * young-generation collections and was promoted to the old one, where it stays until a full
 * collection (old-space accessor data per literal, we believe; the numbers are measured, the
 * cause is not). In-process drains of 30,000 no-op jobs (`--trace-gc-nvp`, bytes promoted per
 * job): 1,360-1,470 with the literal, 1,050-1,180 with the class; with the consumer machine
 * bypassed, to isolate the call, 600 and 115. A spread copy of the context (`{ ...context }`)
 * has no `logger` or `signal`; read them from the context itself. The getters' state is in one
 * object under a symbol, not in #private fields: the getters then work through a `Proxy` or a
 * prototype copy (`Object.create`) of the context, as mocks and instrumentation make, and on a
 * frozen context, and every way in reaches the same logger.
 */
class CallContext implements HandlerContext {
  readonly job: JobEnvelope;
  readonly inference: InferenceClient;
  readonly options: unknown;
  readonly [CALL_STATE]: CallState;

  constructor(job: JobEnvelope, signal: JobSignal, deps: JobDeps) {
    this.job = job;
    this.inference = deps.inference;
    this.options = deps.handlerOptions;
    this[CALL_STATE] = { signal, deps, logger: undefined };
  }

  get logger(): Logger {
    const state = this[CALL_STATE];
    state.logger ??= state.deps.logger.child({
      messageId: this.job.messageId,
      attempt: this.job.attempt,
    });
    return state.logger;
  }

  get signal(): AbortSignal {
    return this[CALL_STATE].signal.signal;
  }
}

function runOne({ item }: Prepared, signal: JobSignal, deps: JobDeps): Promise<unknown> {
  // Only a handler with `handle` gets here: one with `handleBatch` alone goes through runBatch.
  return deps.handler.handle!(item.input, new CallContext(item.envelope!, signal, deps));
}

async function runBatch(group: Prepared[], signal: JobSignal, deps: JobDeps): Promise<unknown[]> {
  const jobs = group.map(({ item }) => item.envelope!);
  const outputs = await deps.handler.handleBatch!(
    group.map(({ item }) => item.input),
    {
      logger: deps.logger,
      inference: deps.inference,
      signal: signal.signal,
      jobs,
      options: deps.handlerOptions,
    },
  );
  if (!Array.isArray(outputs) || outputs.length !== group.length) {
    const found = Array.isArray(outputs) ? `${outputs.length} results` : typeof outputs;
    throw new InvalidResultError(
      `handleBatch: expected ${group.length} results, one per input, found ${found}`,
    );
  }
  return outputs;
}

function serialiseResult(output: unknown): Buffer {
  try {
    return Buffer.from(JSON.stringify(output ?? null));
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new InvalidResultError(`the handler's result cannot be written as JSON: ${detail}`, {
      cause,
    });
  }
}
