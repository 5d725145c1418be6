import type { JobTrace } from './consumer-telemetry.ts';
import { publishItems, settleItems } from './job-settle.ts';
import {
  decodeItems,
  handleItems,
  type JobDeps,
  type JobItem,
  type JobOutcome,
  toItems,
  validateItems,
} from './job-steps.ts';
import { verifyItems } from './job-verify.ts';
import { runInContext } from './trace-propagation.ts';
import type { Delivery } from './transport.ts';

/** Where a job is: each step in turn, then `done`, or `failed` when a step threw. */
export type JobState =
  | 'decoding'
  | 'verifying'
  | 'validating'
  | 'handling'
  | 'publishing'
  | 'settling'
  | 'done'
  | 'failed';

/** What a finished job reports to its consumer: one outcome per delivery. */
export interface JobOutput {
  jobId: string;
  outcomes: Array<{ messageId: string | undefined; outcome: JobOutcome; code?: string }>;
  /** How long the handler ran for these deliveries (ms); undefined when it did not run. */
  handleMs: number | undefined;
  /**
   * Set when a publish failed or a step threw: the transport is likely broken and the consumer
   * should stop (its unsettled deliveries return to the queue with its channel).
   */
  fault?: unknown;
}

/** One state change of a job; `cause` names the step that finished (or `received`, `threw`). */
export interface JobTransition {
  jobId: string;
  from: JobState | undefined;
  to: JobState;
  cause: string;
  items: readonly JobItem[];
}

/**
 * Told of every job's state changes. With a `watching` function, only while it returns true:
 * otherwise no transition is even built (the consumer's observer, while nobody listens).
 */
export type JobObserver = ((transition: JobTransition) => void) & { watching?: () => boolean };

function watched(observe: JobObserver | undefined): observe is JobObserver {
  return observe !== undefined && (observe.watching?.() ?? true);
}

const STEPS = [
  { state: 'decoding', run: decodeItems, done: 'decoded' },
  { state: 'verifying', run: verifyItems, done: 'verified' },
  { state: 'validating', run: validateItems, done: 'validated' },
  { state: 'handling', run: handleItems, done: 'handled' },
  { state: 'publishing', run: publishItems, done: 'published' },
  { state: 'settling', run: settleItems, done: 'settled' },
] as const;

/**
 * One job: a list of deliveries (one, or a batch) taken through the steps in order. A job is a
 * small actor of its own, with its states and one message to its consumer (the output), but not
 * an xstate actor: spawning one per delivery cost more than everything else the runtime does.
 */
export function runJob(
  jobId: string,
  deliveries: readonly Delivery[],
  receivedAt: number,
  deps: JobDeps,
  observe: JobObserver | undefined,
): Promise<JobOutput> {
  // When the batch's first delivery arrived: the broker's consumer timeout counts from there.
  const items = toItems(deliveries, receivedAt);
  const trace = deps.telemetry?.jobStarted(items);
  // In the process span's context, whatever the steps log or trace belongs to the job.
  return trace === undefined
    ? runSteps(jobId, items, deps, observe, undefined)
    : runInContext(trace.context, () => runSteps(jobId, items, deps, observe, trace));
}

/** Takes the items through the steps, then reports the job's end to its telemetry. */
async function runSteps(
  jobId: string,
  items: JobItem[],
  deps: JobDeps,
  observe: JobObserver | undefined,
  trace: JobTrace | undefined,
): Promise<JobOutput> {
  // Each state entered is reported (written out, not as a closure: one per job costs).
  let state: JobState | undefined;
  let cause = 'received';
  let error: unknown;
  try {
    for (const step of STEPS) {
      if (watched(observe)) observe({ jobId, from: state, to: step.state, cause, items });
      state = step.state;
      // Decoding, validating, settling (and verifying without a verifier) return no promise.
      const pending = step.run(items, deps);
      if (pending !== undefined) await pending;
      cause = step.done;
    }
    if (watched(observe)) observe({ jobId, from: state, to: 'done', cause, items });
  } catch (thrown) {
    // A bug or a broken transport, never a bad message: the consumer stops.
    error = thrown;
    if (watched(observe)) observe({ jobId, from: state, to: 'failed', cause: 'threw', items });
  }
  deps.telemetry?.jobFinished(items, trace, error);
  return outputOf(jobId, items, error);
}

/** The output of a job whose steps could not run at all: each delivery requeued, `error` its fault. */
export function abandonedOutput(
  jobId: string,
  deliveries: readonly Delivery[],
  error: unknown,
): JobOutput {
  return outputOf(jobId, toItems(deliveries, 0), error);
}

function outputOf(jobId: string, items: readonly JobItem[], error: unknown): JobOutput {
  const outcomes = items.map((item) => ({
    messageId: item.delivery.properties.messageId,
    outcome: item.outcome ?? 'requeued',
    ...(item.failure === undefined ? {} : { code: item.failure.code }),
  }));
  const fault =
    error ??
    items.find((item) => item.publishFailure)?.publishFailure ??
    items.find((item) => item.failure?.fate === 'crash')?.failure;
  let handleMs: number | undefined;
  for (const item of items) {
    if (item.handleMs !== undefined) handleMs = Math.max(handleMs ?? 0, item.handleMs);
  }
  return { jobId, outcomes, handleMs, ...(fault === undefined ? {} : { fault }) };
}
