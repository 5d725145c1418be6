import { HEADERS, optionalInteger } from './envelope.ts';
import { ReasonedError, type WarrenError } from './errors.ts';
import type { Delivery, HeaderValue, MessageProperties } from './transport.ts';

const MAX_ERROR_MESSAGE = 512;

/** What Warren records about a failed attempt, on a retry and on a dead letter alike. */
export interface FailureInfo {
  error: WarrenError;
  handler: string;
  /** When this attempt failed, in UTC epoch milliseconds. */
  failedAt: number;
  /** The attempt that failed (1 for the first). */
  attempt: number;
}

/**
 * The properties of a dead letter: the original properties and headers plus the reason headers,
 * the attempts made and the first and last failure times. The body stays byte for byte.
 */
export function deadLetterProperties(delivery: Delivery, info: FailureInfo): MessageProperties {
  const headers = withFailure(delivery, info);
  headers[HEADERS.attempts] = info.attempt;
  headers[HEADERS.sourceQueue] = delivery.queue;
  // A dead letter is kept until someone reads it; the job's own expiration must not remove it.
  const { expiration: _dropped, ...properties } = delivery.properties;
  return { ...properties, headers };
}

/**
 * The properties of a job on its way to a delay queue: attempt raised (unless `nextAttempt`
 * says otherwise), the last failure recorded, and the broker's dead-lettering headers dropped,
 * so that however often a job cycles its headers stay the same size.
 */
export function retryProperties(
  delivery: Delivery,
  info: FailureInfo & { nextAttempt: number; expiration?: string },
): MessageProperties {
  const headers = withFailure(delivery, info);
  headers[HEADERS.attempt] = info.nextAttempt;
  const { expiration: _dropped, ...properties } = delivery.properties;
  return info.expiration === undefined
    ? { ...properties, headers }
    : { ...properties, headers, expiration: info.expiration };
}

/** A job's properties without the headers the broker added on its way (see below). */
export function withoutBookkeeping(properties: MessageProperties): MessageProperties {
  return { ...properties, headers: ownHeaders(properties.headers ?? {}) };
}

function ownHeaders(original: Record<string, HeaderValue>): Record<string, HeaderValue> {
  const headers: Record<string, HeaderValue> = {};
  for (const [name, value] of Object.entries(original)) {
    if (!isBrokerBookkeeping(name)) headers[name] = value;
  }
  return headers;
}

function withFailure(delivery: Delivery, info: FailureInfo): Record<string, HeaderValue> {
  const { error } = info;
  const original = delivery.properties.headers ?? {};
  const headers = ownHeaders(original);
  const firstFailedAt = readInteger(original[HEADERS.firstFailedAt]) ?? info.failedAt;
  headers[HEADERS.errorCode] = error.code;
  headers[HEADERS.reason] = reasonFor(error);
  // One line, as the format promises: some messages (JSON.stringify's) span several.
  headers[HEADERS.errorMessage] = error.message
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, MAX_ERROR_MESSAGE);
  headers[HEADERS.handler] = info.handler;
  headers[HEADERS.failedAt] = info.failedAt;
  headers[HEADERS.firstFailedAt] = firstFailedAt;
  return headers;
}

/** Headers RabbitMQ adds when it dead-letters or redelivers; they grow with every cycle. */
function isBrokerBookkeeping(name: string): boolean {
  return (
    name === 'x-death' ||
    name === 'x-delivery-count' ||
    name.startsWith('x-first-death-') ||
    name.startsWith('x-last-death-')
  );
}

function readInteger(value: HeaderValue): number | undefined {
  try {
    return optionalInteger(value, HEADERS.firstFailedAt);
  } catch {
    return undefined;
  }
}

const REASONS: Partial<Record<WarrenError['code'], string>> = {
  WARREN_SCHEMA_VIOLATION: 'schema-violation',
  WARREN_HANDLER_FAILED: 'handler-failed',
  WARREN_JOB_REJECTED: 'rejected-by-handler',
  WARREN_INVALID_RESULT: 'invalid-result',
  WARREN_RESULT_UNROUTABLE: 'result-unroutable',
  WARREN_DEADLINE_EXCEEDED: 'expired',
  WARREN_INPUT_TOO_LONG: 'input-too-long',
  WARREN_INFERENCE_FAILED: 'inference-failed',
};

/** The short reason written to `x-warren-reason`. */
export function reasonFor(error: WarrenError): string {
  if (error instanceof ReasonedError) return error.reason;
  return (
    REASONS[error.code] ??
    error.code
      .toLowerCase()
      .replace(/^warren_/, '')
      .replaceAll('_', '-')
  );
}
