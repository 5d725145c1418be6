import { type Delivery, HEADERS, type HeaderValue } from '@warren/core';
import type { MemoryTransport } from '@warren/memory';

/** A result that reached the harness's reply queue. */
export interface HarnessResult {
  /** The job's message id (the result's `correlation_id`). */
  messageId: string;
  /** The handler's return value, as JSON parsed back. */
  body: unknown;
  /** The result's headers: `x-warren-handler`, `x-warren-attempt`, ... */
  headers: Record<string, HeaderValue>;
}

/** A job that reached the model type's dead-letter queue. */
export interface HarnessDeadLetter {
  messageId: string;
  /**
   * `x-warren-reason`, such as `handler-failed`, `schema-violation` or `expired`; for a message
   * the broker dead-lettered itself (a quorum queue's delivery limit), its `x-death` reason.
   */
  reason: string;
  /** `x-warren-error-code`, such as `WARREN_HANDLER_FAILED`; undefined if the broker made it. */
  code: string | undefined;
  /** `x-warren-error-message`: the error's message, cut at 512 characters. */
  message: string | undefined;
  /** The attempts made, the last included. */
  attempts: number;
  headers: Record<string, HeaderValue>;
  /** The job's body as published, parsed from JSON (the text itself if it is not JSON). */
  body: unknown;
}

/** What became of a job: the first result or dead letter seen for its message id. */
export type JobOutcome =
  | { kind: 'result'; result: HarnessResult }
  | { kind: 'dead-letter'; deadLetter: HarnessDeadLetter };

/**
 * Everything that comes back from the worker: results through a reply queue, and dead letters
 * from the model type's dead-letter queue, each consumed and acked as it arrives.
 */
export class Outcomes {
  readonly results: HarnessResult[] = [];
  readonly deadLetters: HarnessDeadLetter[] = [];
  readonly #byId = new Map<string, JobOutcome>();

  /** Starts consuming `replyQueue` and `deadLetterQueue` on `transport` (connected). */
  static async collect(
    transport: MemoryTransport,
    replyQueue: string,
    deadLetterQueue: string,
  ): Promise<Outcomes> {
    const outcomes = new Outcomes();
    await transport.consume(replyQueue, { prefetch: 100 }, (delivery) => {
      transport.ack(delivery);
      outcomes.#addResult(delivery);
    });
    await transport.consume(deadLetterQueue, { prefetch: 100 }, (delivery) => {
      transport.ack(delivery);
      outcomes.#addDeadLetter(delivery, transport);
    });
    return outcomes;
  }

  of(messageId: string): JobOutcome | undefined {
    return this.#byId.get(messageId);
  }

  /** How many results and dead letters have arrived. */
  get size(): number {
    return this.results.length + this.deadLetters.length;
  }

  #addResult(delivery: Delivery): void {
    const result: HarnessResult = {
      messageId: delivery.properties.correlationId ?? '',
      body: parseBody(delivery.body),
      headers: { ...delivery.properties.headers },
    };
    this.results.push(result);
    if (!this.#byId.has(result.messageId)) {
      this.#byId.set(result.messageId, { kind: 'result', result });
    }
  }

  #addDeadLetter(delivery: Delivery, transport: MemoryTransport): void {
    const headers = { ...delivery.properties.headers };
    const brokerReason = transport.deathHistory(delivery)[0]?.reason;
    const deadLetter: HarnessDeadLetter = {
      messageId: delivery.properties.messageId ?? '',
      reason: text(headers[HEADERS.reason]) ?? brokerReason ?? 'unknown',
      code: text(headers[HEADERS.errorCode]),
      message: text(headers[HEADERS.errorMessage]),
      attempts: whole(headers[HEADERS.attempts]) ?? whole(headers[HEADERS.attempt]) ?? 1,
      headers,
      body: parseBody(delivery.body),
    };
    this.deadLetters.push(deadLetter);
    if (!this.#byId.has(deadLetter.messageId)) {
      this.#byId.set(deadLetter.messageId, { kind: 'dead-letter', deadLetter });
    }
  }
}

function parseBody(body: Buffer): unknown {
  const content = body.toString('utf-8');
  try {
    return JSON.parse(content);
  } catch {
    return content;
  }
}

function text(value: HeaderValue): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function whole(value: HeaderValue): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
}
