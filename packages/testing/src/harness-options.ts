import {
  ConfigError,
  type DeadlinePolicy,
  describeIssues,
  type Handler,
  type InferenceClient,
  type RetryPolicy,
} from '@warren/core';
import type { Logger } from 'pino';

/** What {@link createHarness} is given: the handler under test, and how to run it. */
export interface HarnessOptions {
  /** A handler made with `defineHandler`. Its `setup` runs before the consumer starts. */
  handler: Handler;
  /** The handler's options, as a worker config would give them; checked by its schema. */
  options?: unknown;
  /** Overrides the handler's retry policy, field by field. */
  retry?: Partial<RetryPolicy>;
  /** What the handler calls for models; without one, any call dead-letters the job. */
  inference?: InferenceClient;
  deadlines?: Partial<DeadlinePolicy>;
  /** Unacked deliveries the broker may send the consumer at once (default 16). */
  prefetch?: number;
  /** Handler calls that may run at once (default 1). */
  concurrency?: number;
  /** Where the fake clock starts, in epoch milliseconds (default 2025-01-01T00:00:00Z). */
  now?: number;
  /** Picks the jitter of retry delays (default `() => 0.5`: each delay is its policy's middle). */
  random?: () => number;
  /** Receives the consumer's log lines (default: a silent pino logger). */
  logger?: Logger;
  /**
   * How long, in real time, `result()` and `deadLetter()` keep waiting for a handler that is
   * still running once everything else is quiet: for a handler that awaits real I/O (default
   * 200 ms). A handler waiting on the fake clock needs `advance()` instead.
   */
  handlerGraceMs?: number;
}

/** The envelope fields a test may set on a job; the rest get the producer's defaults. */
export interface HarnessJob {
  /** Default `test`. */
  tenant?: string;
  /**
   * Default `public`. The harness's consumer serves the handler's scope (its only one, or
   * `public`); a job of a scope it does not serve has no queue, and `publish` rejects with a
   * `JobUnroutableError`.
   */
  scope?: string;
  /** 0 to 9 (default 0). */
  priority?: number;
  /** Epoch milliseconds on the harness's fake clock (`harness.clock.now() + ms`). */
  deadline?: number;
  /** Default: a random UUID. Publish twice with one id to see the duplicate dropped. */
  messageId?: string;
}

const NO_INFERENCE_MESSAGE =
  'this harness has no inference client; pass `inference` to createHarness';

function noInferenceClient(): Promise<never> {
  // A config fault, not a transient one: the job is dead-lettered at once, not retried.
  return Promise.reject(new ConfigError(NO_INFERENCE_MESSAGE));
}

/** The inference client of a harness given none: every call fails, saying so. */
export const NO_INFERENCE: InferenceClient = {
  featureExtraction: noInferenceClient,
  textClassification: noInferenceClient,
};

/** Checks `options` against the handler's schema, as a worker checks its config. */
export function handlerOptionsOf(handler: Handler, options: unknown): unknown {
  if (handler.options === undefined) {
    if (options === undefined) return undefined;
    throw new ConfigError(`options: handler ${handler.name} takes no options, found some`);
  }
  const parsed = handler.options.safeParse(options ?? {}, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(describeIssues(parsed.error, { root: 'options', showValues: true }));
  }
  return parsed.data;
}
