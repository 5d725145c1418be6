import type { Logger } from 'pino';
import {
  deadLetterProperties,
  decodeEnvelope,
  decodeJsonBody,
  type JobEnvelope,
  resultProperties,
} from './envelope.ts';
import {
  DeadlineExceededError,
  HandlerError,
  MalformedMessageError,
  PublishError,
  SchemaViolationError,
  toWarrenError,
  type WarrenError,
} from './errors.ts';
import type { Handler } from './handler.ts';
import type { InferenceClient } from './inference.ts';
import type { Delivery, QueueTopology, Transport } from './transport.ts';
import { describeIssues } from './validation.ts';

/**
 * The per-delivery steps of a job: decode, validate, handle, publish, settle. Each step takes
 * the whole list of items, so that a batch of deliveries moves through them together; an item
 * that fails carries its error on to the publish step (dead letter) and never fails its
 * neighbours.
 */
export interface JobItem {
  readonly delivery: Delivery;
  envelope?: JobEnvelope;
  body?: unknown;
  input?: unknown;
  /** The handler's result, serialised. */
  result?: Buffer;
  failure?: WarrenError;
  /** Set when the worker's shutdown aborted the handler: the job goes back to the queue. */
  interrupted?: boolean;
  /** Set when publishing its result or dead letter failed. */
  publishFailure?: PublishError;
  outcome?: JobOutcome;
}

export type JobOutcome = 'succeeded' | 'dead-lettered' | 'requeued';

/** What the steps need from the consumer that runs them. */
export interface JobDeps {
  handler: Handler;
  handlerOptions: unknown;
  transport: Transport;
  topology: QueueTopology;
  inference: InferenceClient;
  logger: Logger;
  /** Aborts when the worker's drain deadline passes. */
  shutdown: AbortSignal;
  /** Runs a handler call within the consumer's concurrency limit. */
  schedule<T>(task: () => Promise<T>): Promise<T>;
  now(): number;
}

export function toItems(deliveries: readonly Delivery[]): JobItem[] {
  return deliveries.map((delivery) => ({ delivery }));
}

function live(items: JobItem[]): JobItem[] {
  return items.filter((item) => item.failure === undefined && !item.interrupted);
}

export async function decodeItems(items: JobItem[], deps: JobDeps): Promise<JobItem[]> {
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
      item.body = decodeJsonBody(item.delivery.body, envelope.contentType);
    } catch (error) {
      item.failure = toWarrenError(error, (message, cause) => new HandlerError(message, { cause }));
    }
  }
  return items;
}

export async function validateItems(items: JobItem[], deps: JobDeps): Promise<JobItem[]> {
  for (const item of live(items)) {
    const parsed = deps.handler.input.safeParse(item.body, { reportInput: true });
    if (parsed.success) item.input = parsed.data;
    else item.failure = new SchemaViolationError(describeIssues(parsed.error, { root: 'input' }));
  }
  return items;
}

export async function handleItems(items: JobItem[], deps: JobDeps): Promise<JobItem[]> {
  await Promise.all(live(items).map((item) => handleItem(item, deps)));
  return items;
}

async function handleItem(item: JobItem, deps: JobDeps): Promise<void> {
  const envelope = item.envelope!;
  const remaining = envelope.deadline === undefined ? undefined : envelope.deadline - deps.now();
  if (remaining !== undefined && remaining <= 0) {
    item.failure = new DeadlineExceededError(
      `deadline ${new Date(envelope.deadline!).toISOString()} passed before handling`,
    );
    return;
  }

  const signal =
    remaining === undefined
      ? deps.shutdown
      : AbortSignal.any([deps.shutdown, AbortSignal.timeout(remaining)]);
  const logger = deps.logger.child({
    messageId: envelope.messageId,
    handler: deps.handler.name,
    attempt: envelope.attempt,
  });

  try {
    const output = await deps.schedule(() =>
      deps.handler.handle(item.input, {
        logger,
        inference: deps.inference,
        signal,
        job: envelope,
        options: deps.handlerOptions,
      }),
    );
    item.result = serialiseResult(output);
  } catch (error) {
    if (deps.shutdown.aborted) {
      item.interrupted = true;
    } else if (signal.aborted) {
      item.failure = new DeadlineExceededError('deadline passed while the handler ran', {
        cause: error,
      });
    } else {
      item.failure = toWarrenError(error, (message, cause) => new HandlerError(message, { cause }));
    }
  }
}

function serialiseResult(output: unknown): Buffer {
  try {
    return Buffer.from(JSON.stringify(output ?? null));
  } catch (cause) {
    throw new HandlerError('the handler returned a value that cannot be written as JSON', {
      cause,
    });
  }
}

/** Publishes each result and each dead letter, and waits for the broker's confirms. */
export async function publishItems(items: JobItem[], deps: JobDeps): Promise<JobItem[]> {
  await Promise.all(
    items.map(async (item) => {
      try {
        if (item.result !== undefined) await publishResult(item, item.result, deps);
        else if (item.failure !== undefined) await publishDeadLetter(item, item.failure, deps);
      } catch (error) {
        item.publishFailure = new PublishError(
          error instanceof Error ? error.message : String(error),
          { cause: error },
        );
      }
    }),
  );
  return items;
}

async function publishResult(item: JobItem, result: Buffer, deps: JobDeps): Promise<void> {
  const envelope = item.envelope!;
  const target =
    envelope.replyTo === undefined
      ? {
          exchange: deps.topology.resultsExchange,
          routingKey: `${envelope.modelType}.${envelope.tenant}`,
        }
      : { exchange: '', routingKey: envelope.replyTo };
  await deps.transport.publish(target, result, resultProperties(envelope, deps.handler.name));
}

async function publishDeadLetter(item: JobItem, error: WarrenError, deps: JobDeps): Promise<void> {
  const properties = deadLetterProperties(item.delivery, {
    error,
    handler: deps.handler.name,
    failedAt: deps.now(),
  });
  await deps.transport.publish(
    { exchange: deps.topology.deadLetterExchange, routingKey: deps.topology.deadLetterRoutingKey },
    item.delivery.body,
    properties,
  );
  deps.logger.warn(
    {
      messageId: item.delivery.properties.messageId,
      handler: deps.handler.name,
      code: error.code,
      queue: item.delivery.queue,
    },
    'job dead-lettered',
  );
}

/**
 * Acks what was published. A job whose result could not be published goes back to the queue;
 * a dead letter that could not be published is rejected, so the queue's own dead-letter
 * exchange keeps it (without Warren's reason headers, but not lost).
 */
export async function settleItems(items: JobItem[], deps: JobDeps): Promise<JobItem[]> {
  for (const item of items) {
    if (item.interrupted) {
      deps.transport.nack(item.delivery, { requeue: true });
      item.outcome = 'requeued';
    } else if (item.publishFailure === undefined) {
      deps.transport.ack(item.delivery);
      item.outcome = item.failure === undefined ? 'succeeded' : 'dead-lettered';
    } else if (item.failure === undefined) {
      deps.transport.nack(item.delivery, { requeue: true });
      item.outcome = 'requeued';
    } else {
      deps.transport.nack(item.delivery, { requeue: false });
      item.outcome = 'dead-lettered';
    }
  }
  return items;
}
