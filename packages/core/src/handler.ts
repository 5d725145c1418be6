import type { Logger } from 'pino';
import type { z } from 'zod';
import { type Clearance, checkHandlerClearance } from './clearance.ts';
import type { JobEnvelope } from './envelope.ts';
import { PluginError } from './errors.ts';
import type { InferenceClient } from './inference.ts';
import type { DEFAULT_RETRY_POLICY, RetryPolicy } from './retry.ts';

/** What a handler receives beside its input. */
export interface HandlerContext<Options = unknown> {
  /** A child logger bound to the job (`messageId`, `handler`, `attempt`). Never log bodies. */
  logger: Logger;
  inference: InferenceClient;
  /** Aborts when the job's deadline passes or the worker shuts down. Pass it to model calls. */
  signal: AbortSignal;
  job: Readonly<JobEnvelope>;
  /** The handler's options from the worker config, validated by its `options` schema. */
  options: Options;
}

/** What {@link HandlerSpec.handleBatch} receives beside its inputs. */
export interface BatchContext<Options = unknown> {
  logger: Logger;
  inference: InferenceClient;
  /** Aborts when the worker shuts down, or when the last of the batch's deadlines passes. */
  signal: AbortSignal;
  /** The envelopes of the batch's jobs, in the order of the inputs. */
  jobs: ReadonlyArray<Readonly<JobEnvelope>>;
  options: Options;
}

/** How a consumer gathers deliveries into one {@link HandlerSpec.handleBatch} call. */
export interface BatchOptions {
  /** Most jobs in one call. 1 turns batching off. */
  maxSize: number;
  /** Longest a job waits for the batch to fill, in milliseconds. */
  maxWaitMs: number;
  /**
   * Most tokens in one call, estimated from body sizes (4 bytes a token, about right for
   * English); absent means no limit. A job larger than the budget still runs, alone.
   */
  maxTokens?: number;
}

/** What {@link HandlerSpec.setup} receives. */
export type SetupContext<Options = unknown> = Pick<
  HandlerContext<Options>,
  'logger' | 'inference' | 'options'
>;

export interface HandlerSpec<Input, Output, Options> {
  /** Unique within a worker; appears in logs, result and dead-letter headers. */
  name: string;
  /** The model type (queue family) the handler serves. */
  modelType: string;
  /** Validates each job's decoded JSON body; the handler sees only what passes. */
  input: z.ZodType<Input>;
  /** How failed jobs are retried; fields left out take {@link DEFAULT_RETRY_POLICY}'s. */
  retry?: Partial<RetryPolicy>;
  /** Validates the handler's `options` from the worker config (default: none accepted). */
  options?: z.ZodType<Options>;
  /**
   * Runs once before the consumer subscribes, typically to load the model, so that no job is
   * taken before the handler can serve it. A failure here is a worker fault, not a job's.
   */
  setup?(context: SetupContext<Options>): Promise<void>;
  /** Handles one job. Its return value, as JSON, is the job's result. */
  handle?(input: Input, context: HandlerContext<Options>): Promise<Output>;
  /**
   * Handles several jobs in one call, typically one model call for all of them. Returns one
   * entry per input, in order: a result, or an `Error` that fails that job alone. Throwing fails
   * the whole batch. A handler needs `handle`, `handleBatch`, or both.
   */
  handleBatch?(inputs: Input[], context: BatchContext<Options>): Promise<Array<Output | Error>>;
  /** How jobs are batched for {@link handleBatch} (default: not at all). */
  batch?: Partial<BatchOptions>;
  /**
   * Which jobs get a result message. `always` (the default): a job's `reply_to` queue, or else
   * the results exchange. `reply-to-only`: only jobs that name a `reply_to` queue; the others are
   * acked when the handler succeeds, for handlers whose work is a side effect (writing to a
   * store, say) and whose producers do not wait for an answer.
   */
  results?: ResultsPolicy;
  /**
   * The scopes and tenants this handler may serve (default: scope `public`, any tenant). Jobs of
   * other scopes never reach its queue, and a job that does anyway is refused (`forbidden`).
   */
  clearance?: Clearance;
}

export type ResultsPolicy = 'always' | 'reply-to-only';

const RESULTS_POLICIES: readonly ResultsPolicy[] = ['always', 'reply-to-only'];

const HANDLER = Symbol.for('warren.handler');

/** A handler made by {@link defineHandler}. */
export interface Handler<Input = unknown, Output = unknown, Options = unknown>
  extends Readonly<HandlerSpec<Input, Output, Options>> {
  readonly [HANDLER]: true;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;

/**
 * Defines a handler plugin. A plugin module exports the result as its default export or as
 * `handler`:
 *
 * ```ts
 * export default defineHandler({
 *   name: 'embed', modelType: 'feature-extraction',
 *   input: z.object({ text: z.string() }),
 *   async handle({ text }, { inference, signal }) { ... },
 * });
 * ```
 */
export function defineHandler<Input, Output, Options = undefined>(
  spec: HandlerSpec<Input, Output, Options>,
): Handler<Input, Output, Options> {
  for (const field of ['name', 'modelType'] as const) {
    if (!NAME.test(spec[field])) {
      throw new PluginError(
        `handler ${field}: expected lower-case letters, digits, '.', '_' or '-' (1 to 100), ` +
          `found ${JSON.stringify(spec[field])}`,
      );
    }
  }
  if (typeof spec.handle !== 'function' && typeof spec.handleBatch !== 'function') {
    throw new PluginError(
      `handler ${spec.name}: expected handle or handleBatch to be a function, found neither`,
    );
  }
  if (spec.results !== undefined && !RESULTS_POLICIES.includes(spec.results)) {
    throw new PluginError(
      `handler ${spec.name}: results: expected ${RESULTS_POLICIES.join(' or ')}, ` +
        `found ${JSON.stringify(spec.results)}`,
    );
  }
  checkHandlerClearance(spec.name, spec.clearance);
  return Object.freeze({ ...spec, [HANDLER]: true as const });
}

/** Whether a value was made by {@link defineHandler} (in this or another copy of core). */
export function isHandler(value: unknown): value is Handler {
  return typeof value === 'object' && value !== null && HANDLER in value;
}
