import type { JobEnvelope } from './envelope.ts';
import {
  ConsumerTimeoutError,
  DeadlineExceededError,
  DedupeUnavailableError,
  describeThrown,
} from './errors.ts';
import type { JobDeps, JobItem } from './job-steps.ts';

/**
 * Whether a job may run here and now, just before its handler: its deadline has not passed and
 * lies within the broker's consumer timeout, and this worker holds its dedupe claim. Also the
 * release of that claim when the job does not end with a published result.
 */

/**
 * An item cleared to run, with the time left before its deadline and before the broker's
 * consumer timeout (each undefined when there is none).
 */
export interface Prepared {
  item: JobItem;
  remaining: number | undefined;
  timeoutLeft: number | undefined;
}

/** Checks the deadline and claims the job; undefined when it must not run here now. */
export async function prepare(item: JobItem, deps: JobDeps): Promise<Prepared | undefined> {
  const envelope = item.envelope!;
  const remaining = remainingMs(envelope, deps);
  if (remaining !== undefined && remaining <= 0) {
    item.failure = new DeadlineExceededError(
      `deadline ${new Date(envelope.deadline!).toISOString()} passed before handling`,
    );
    return undefined;
  }
  const timeoutLeft = consumerTimeLeft(item, deps);
  if (timeoutLeft !== undefined && timeoutLeft <= 0) {
    // Held waiting (for its batch to start, or for a handler slot) until no time is left.
    item.failure = new ConsumerTimeoutError(
      `its batch waited ${Math.round(deps.clock.now() - item.receivedAt)} ms since its first ` +
        `delivery arrived, too near the ${deps.consumerTimeoutMs} ms the broker allows a ` +
        'delivery unacked (consumer timeout) to start its handler: lower prefetch, so that ' +
        'fewer jobs wait, or raise consumer_timeout',
    );
    return undefined;
  }
  if (remaining !== undefined && timeoutLeft !== undefined && remaining > timeoutLeft) {
    // Running until its deadline would outlast the delivery: refused now, not cut off later.
    item.failure = new ConsumerTimeoutError(
      `deadline ${new Date(envelope.deadline!).toISOString()} is beyond the ` +
        `${deps.consumerTimeoutMs} ms the broker allows a delivery unacked (consumer timeout): ` +
        'set a nearer deadline, or raise consumer_timeout',
    );
    return undefined;
  }
  return (await claim(item, remaining, deps)) ? { item, remaining, timeoutLeft } : undefined;
}

/**
 * The share of the broker's consumer timeout kept back from handlers, so that a job is stopped
 * and settled before the broker closes its channel: a tenth, at most a minute.
 */
export function consumerTimeoutMargin(timeoutMs: number): number {
  return Math.min(60_000, timeoutMs / 10);
}

/** How long the item may still run before the broker's consumer timeout, less the margin. */
function consumerTimeLeft(item: JobItem, deps: JobDeps): number | undefined {
  const timeout = deps.consumerTimeoutMs;
  if (timeout === undefined) return undefined;
  const held = deps.clock.now() - item.receivedAt;
  return timeout - consumerTimeoutMargin(timeout) - held;
}

/** Time left before the job's deadline (with the skew allowance), or undefined for none. */
export function remainingMs(envelope: JobEnvelope, deps: JobDeps): number | undefined {
  if (envelope.deadline === undefined) return undefined;
  return envelope.deadline + deps.deadlines.skewMs - deps.clock.now();
}

/**
 * Claims the job in the dedupe store; false when it must not run here now. The claim lasts
 * until the job's deadline (the handler cannot run past it), else for the configured lease.
 */
async function claim(
  item: JobItem,
  remaining: number | undefined,
  deps: JobDeps,
): Promise<boolean> {
  if (deps.dedupe === undefined) return true;
  const messageId = item.envelope!.messageId;
  const leaseMs = remaining === undefined ? deps.dedupe.leaseMs : Math.max(1, Math.ceil(remaining));
  try {
    const state = await deps.dedupe.store.claim(messageId, leaseMs);
    if (state === 'done') item.duplicate = true;
    else if (state === 'in-progress') item.deferred = true;
    else item.claimed = true;
  } catch (error) {
    // Without the store, running could duplicate a result: the job is retried, not run, and
    // dead-lettered after its last attempt if the store stays out of reach.
    deps.logger.warn({ messageId, err: error }, 'dedupe store unavailable; job not run');
    item.failure = new DedupeUnavailableError(
      `dedupe store unavailable: ${describeThrown(error)}`,
      { cause: error },
    );
  }
  return item.claimed === true;
}

/** Gives up this worker's claim on the job, so that a retry or a replay can run it. */
export async function release(item: JobItem, deps: JobDeps): Promise<void> {
  if (!item.claimed || deps.dedupe === undefined) return;
  item.claimed = false;
  const messageId = item.envelope!.messageId;
  await deps.dedupe.store.release(messageId).catch((error: unknown) => {
    deps.logger.warn({ messageId, err: error }, 'dedupe release failed');
  });
}
