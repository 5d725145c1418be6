import { randomUUID } from 'node:crypto';
import { scopeProblem } from './clearance.ts';
import { MalformedMessageError } from './errors.ts';
import type { HeaderValue, MessageProperties } from './transport.ts';

/**
 * The job envelope: everything Warren knows about a job besides its body. It travels as AMQP
 * properties and `x-warren-*` headers; docs/message-format.md is the contract for producers.
 */
export interface JobEnvelope {
  messageId: string;
  tenant: string;
  /** 0 (lowest) to 9. */
  priority: number;
  /** The access scope the job needs clearance for, such as `public` or `restricted`. */
  scope: string;
  /** When the job stops being worth doing, in UTC epoch milliseconds; absent means never. */
  deadline?: number;
  /** 1 for the first delivery attempt. */
  attempt: number;
  /** The queue family the job is for, such as `feature-extraction`. */
  modelType: string;
  contentType: string;
  trace: TraceContext;
  replyTo?: string;
  /** When the producer created the job, in UTC epoch milliseconds. */
  createdAt?: number;
}

/** W3C trace context and baggage, carried verbatim. */
export interface TraceContext {
  traceparent?: string;
  tracestate?: string;
  baggage?: string;
}

/** Header names. One place, so producers in other languages can be checked against it. */
export const HEADERS = {
  tenant: 'x-warren-tenant',
  scope: 'x-warren-scope',
  deadline: 'x-warren-deadline',
  attempt: 'x-warren-attempt',
  modelType: 'x-warren-model-type',
  createdAt: 'x-warren-created-at',
  signature: 'x-warren-signature',
  signatureAlg: 'x-warren-signature-alg',
  keyId: 'x-warren-key-id',
  encryption: 'x-warren-encryption',
  unverified: 'x-warren-unverified',
  encryptionKeyId: 'x-warren-encryption-key-id',
  handler: 'x-warren-handler',
  status: 'x-warren-status',
  errorCode: 'x-warren-error-code',
  reason: 'x-warren-reason',
  errorMessage: 'x-warren-error-message',
  failedAt: 'x-warren-failed-at',
  firstFailedAt: 'x-warren-first-failed-at',
  attempts: 'x-warren-attempts',
  sourceQueue: 'x-warren-source-queue',
  producer: 'x-warren-producer',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  baggage: 'baggage',
} as const;

export const JSON_CONTENT_TYPE = 'application/json';
export const JOB_TYPE = 'warren.job.v1';
export const RESULT_TYPE = 'warren.result.v1';
export const DEFAULT_SCOPE = 'public';

const MAX_PRIORITY = 9;

/** What a producer supplies; the rest of the envelope gets defaults. */
export interface JobSpec {
  modelType: string;
  tenant: string;
  input: unknown;
  scope?: string;
  priority?: number;
  deadline?: number;
  messageId?: string;
  replyTo?: string;
  trace?: TraceContext;
  /** Injected for tests; defaults to `Date.now`. */
  now?: () => number;
}

/** Builds the body and AMQP properties of a new job. */
export function encodeJob(spec: JobSpec): { body: Buffer; properties: MessageProperties } {
  const now = (spec.now ?? Date.now)();
  const envelope: JobEnvelope = {
    messageId: spec.messageId ?? randomUUID(),
    tenant: spec.tenant,
    priority: spec.priority ?? 0,
    scope: spec.scope ?? DEFAULT_SCOPE,
    attempt: 1,
    modelType: spec.modelType,
    contentType: JSON_CONTENT_TYPE,
    trace: spec.trace ?? {},
    createdAt: now,
    ...(spec.deadline === undefined ? {} : { deadline: spec.deadline }),
    ...(spec.replyTo === undefined ? {} : { replyTo: spec.replyTo }),
  };
  checkEnvelope(envelope);
  // The scope is a word of the routing key: a dot or a wildcard in it would route elsewhere.
  const scopeIssue = scopeProblem(envelope.scope);
  if (scopeIssue !== undefined) throw invalid(`scope: ${scopeIssue}`);
  return {
    body: Buffer.from(JSON.stringify(spec.input)),
    properties: envelopeToProperties(envelope),
  };
}

/** Maps an envelope onto AMQP properties and headers. */
export function envelopeToProperties(envelope: JobEnvelope): MessageProperties {
  const headers: Record<string, HeaderValue> = {
    [HEADERS.tenant]: envelope.tenant,
    [HEADERS.scope]: envelope.scope,
    [HEADERS.attempt]: envelope.attempt,
    [HEADERS.modelType]: envelope.modelType,
  };
  if (envelope.deadline !== undefined) headers[HEADERS.deadline] = envelope.deadline;
  if (envelope.createdAt !== undefined) headers[HEADERS.createdAt] = envelope.createdAt;
  for (const key of ['traceparent', 'tracestate', 'baggage'] as const) {
    const value = envelope.trace[key];
    if (value !== undefined) headers[HEADERS[key]] = value;
  }

  const properties: MessageProperties = {
    messageId: envelope.messageId,
    contentType: envelope.contentType,
    contentEncoding: 'utf-8',
    priority: envelope.priority,
    type: JOB_TYPE,
    headers,
  };
  if (envelope.createdAt !== undefined)
    properties.timestamp = Math.floor(envelope.createdAt / 1000);
  if (envelope.replyTo !== undefined) properties.replyTo = envelope.replyTo;
  return properties;
}

/** How errors name each header of the envelope (made once: every job is decoded). */
const FIELD = {
  tenant: `header ${HEADERS.tenant}`,
  scope: `header ${HEADERS.scope}`,
  attempt: `header ${HEADERS.attempt}`,
  modelType: `header ${HEADERS.modelType}`,
  deadline: `header ${HEADERS.deadline}`,
  createdAt: `header ${HEADERS.createdAt}`,
} as const;

/** Reads the envelope from a delivery's properties; throws {@link MalformedMessageError}. */
export function decodeEnvelope(properties: MessageProperties): JobEnvelope {
  const headers = properties.headers ?? {};
  const envelope: JobEnvelope = {
    messageId: requireString(properties.messageId, 'message_id property'),
    tenant: requireString(headers[HEADERS.tenant], FIELD.tenant),
    scope: optionalString(headers[HEADERS.scope], FIELD.scope) ?? DEFAULT_SCOPE,
    priority: properties.priority ?? 0,
    attempt: optionalInteger(headers[HEADERS.attempt], FIELD.attempt) ?? 1,
    modelType: requireString(headers[HEADERS.modelType], FIELD.modelType),
    contentType: properties.contentType ?? '',
    trace: decodeTrace(headers),
  };
  const deadline = optionalInteger(headers[HEADERS.deadline], FIELD.deadline);
  if (deadline !== undefined) envelope.deadline = deadline;
  const createdAt = optionalInteger(headers[HEADERS.createdAt], FIELD.createdAt);
  if (createdAt !== undefined) envelope.createdAt = createdAt;
  if (properties.replyTo) envelope.replyTo = properties.replyTo;

  checkEnvelope(envelope);
  return envelope;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes a JSON body. Refuses, each with its own reason: a content type other than
 * `application/json` (a `charset=utf-8` parameter is allowed), an empty body, bytes that are not
 * UTF-8, and text that is not JSON.
 */
export function decodeJsonBody(body: Buffer, contentType: string): unknown {
  if (contentType !== JSON_CONTENT_TYPE) checkContentType(contentType);
  if (body.length === 0) {
    throw new MalformedMessageError('empty-body', 'expected a JSON body, found 0 bytes');
  }

  let text: string;
  try {
    text = utf8.decode(body);
  } catch (cause) {
    throw new MalformedMessageError('not-utf8', 'expected UTF-8 text, found invalid bytes', {
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    // The parser's message quotes the body, which must not reach headers or logs.
    throw new MalformedMessageError('not-json', 'expected JSON, found text that does not parse', {
      cause,
    });
  }
}

/** Refuses a content type other than JSON, in UTF-8 if it names a charset. */
function checkContentType(contentType: string): void {
  const [mediaType, ...parameters] = contentType
    .split(';')
    .map((part) => part.trim().toLowerCase());
  if (mediaType !== JSON_CONTENT_TYPE) {
    const found = contentType === '' ? 'none' : JSON.stringify(contentType);
    throw new MalformedMessageError(
      'unsupported-content-type',
      `expected content type ${JSON_CONTENT_TYPE}, found ${found}`,
    );
  }
  const parameter = parameters.find((p) => p.startsWith('charset='));
  // A parameter's value may be quoted (RFC 9110): charset="utf-8" is charset=utf-8.
  const charset = parameter?.slice('charset='.length).replace(/^"(.*)"$/, '$1');
  if (charset !== undefined && charset !== 'utf-8') {
    throw new MalformedMessageError(
      'unsupported-content-type',
      `expected charset utf-8, found ${charset}`,
    );
  }
}

/** The properties of a job's result. */
export function resultProperties(envelope: JobEnvelope, handler: string): MessageProperties {
  const headers: Record<string, HeaderValue> = {
    [HEADERS.tenant]: envelope.tenant,
    [HEADERS.modelType]: envelope.modelType,
    [HEADERS.handler]: handler,
    [HEADERS.status]: 'ok',
    [HEADERS.attempt]: envelope.attempt,
  };
  for (const key of ['traceparent', 'tracestate', 'baggage'] as const) {
    const value = envelope.trace[key];
    if (value !== undefined) headers[HEADERS[key]] = value;
  }
  return {
    messageId: randomUUID(),
    correlationId: envelope.messageId,
    contentType: JSON_CONTENT_TYPE,
    contentEncoding: 'utf-8',
    type: RESULT_TYPE,
    timestamp: Math.floor(Date.now() / 1000),
    headers,
  };
}

function checkEnvelope(envelope: JobEnvelope): void {
  if (
    !Number.isInteger(envelope.priority) ||
    envelope.priority < 0 ||
    envelope.priority > MAX_PRIORITY
  ) {
    throw invalid(
      `priority: expected an integer from 0 to ${MAX_PRIORITY}, found ${envelope.priority}`,
    );
  }
  if (envelope.attempt < 1) {
    throw invalid(
      `${HEADERS.attempt}: expected an integer of at least 1, found ${envelope.attempt}`,
    );
  }
  checkName(HEADERS.tenant, envelope.tenant);
  checkName(HEADERS.modelType, envelope.modelType);
  checkName(HEADERS.scope, envelope.scope);
}

/** A tenant, model type or scope: a routing key word, so no spaces or wildcards. */
function checkName(field: string, value: string): void {
  if (value.length === 0 || value.length > 255 || /[\s#*]/.test(value)) {
    throw invalid(
      `${field}: expected 1 to 255 characters without spaces, '#' or '*', found ${JSON.stringify(value)}`,
    );
  }
}

function decodeTrace(headers: Record<string, HeaderValue>): TraceContext {
  const trace: TraceContext = {};
  for (const key of ['traceparent', 'tracestate', 'baggage'] as const) {
    const value = headers[HEADERS[key]];
    if (typeof value === 'string') trace[key] = value;
  }
  return trace;
}

function requireString(value: HeaderValue | Buffer, field: string): string {
  const text = optionalString(value, field);
  if (text === undefined) throw invalid(`${field}: expected a string, found none`);
  if (text === '') throw invalid(`${field}: expected a non-empty string, found ""`);
  return text;
}

function optionalString(value: HeaderValue | Buffer, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Buffer.isBuffer(value)) return value.toString('utf-8');
  if (typeof value !== 'string')
    throw invalid(`${field}: expected a string, found ${typeof value}`);
  return value;
}

/** Integers arrive as AMQP numbers, or as decimal strings from producers that cannot send longs. */
export function optionalInteger(value: HeaderValue | Buffer, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const number =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\d+$/.test(value)
        ? Number(value)
        : Number.NaN;
  if (!Number.isSafeInteger(number)) {
    throw invalid(`${field}: expected an integer, found ${JSON.stringify(String(value))}`);
  }
  return number;
}

function invalid(message: string): MalformedMessageError {
  return new MalformedMessageError('invalid-envelope', message);
}
