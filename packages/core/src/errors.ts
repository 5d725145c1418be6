/**
 * Warren's errors. Each failure kind is one class with a stable code, and the class decides what
 * becomes of the message that caused it (its fate). Every code is documented in
 * docs/error-codes.md; a test fails if one is not.
 */

/** What happens to the message when handling it fails with this error. */
export type Fate =
  /**
   * Publish it to a delay queue with its attempt count raised, then ack it; it comes back after
   * the backoff delay. After the handler's last attempt it is dead-lettered instead.
   */
  | 'retry'
  /** Publish it to the dead-letter queue with the reason, then ack it. Never requeued. */
  | 'dead-letter'
  /** Stop the actor; unacked deliveries return to the queue when its channel closes. */
  | 'crash';

export const ERROR_CODES = [
  'WARREN_MALFORMED_MESSAGE',
  'WARREN_SCHEMA_VIOLATION',
  'WARREN_HANDLER_FAILED',
  'WARREN_JOB_REJECTED',
  'WARREN_SIGNATURE_INVALID',
  'WARREN_DECRYPTION_REFUSED',
  'WARREN_FORBIDDEN',
  'WARREN_IDENTITY_REFUSED',
  'WARREN_INVALID_RESULT',
  'WARREN_DEADLINE_EXCEEDED',
  'WARREN_CONSUMER_TIMEOUT',
  'WARREN_INPUT_TOO_LONG',
  'WARREN_INFERENCE_FAILED',
  'WARREN_DEDUPE_UNAVAILABLE',
  'WARREN_MODEL_LOAD_FAILED',
  'WARREN_PUBLISH_FAILED',
  'WARREN_PUBLISH_BUFFER_FULL',
  'WARREN_RESULT_UNROUTABLE',
  'WARREN_JOB_UNROUTABLE',
  'WARREN_BROKER_UNREACHABLE',
  'WARREN_CONFIG_INVALID',
  'WARREN_PLUGIN_INVALID',
  'WARREN_ILLEGAL_STATE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Marks Warren errors made by any copy of this module (see {@link isWarrenError}). */
const WARREN_ERROR = Symbol.for('warren.error');

/** The base of every Warren error: a stable {@link code} and a fixed {@link fate}. */
export abstract class WarrenError extends Error {
  abstract readonly code: ErrorCode;
  abstract readonly fate: Fate;

  static {
    Object.defineProperty(WarrenError.prototype, WARREN_ERROR, { value: true });
  }

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Whether `value` is a Warren error, also one made by another copy of @warren/core (a plugin
 * bundled with its own), which `instanceof WarrenError` misses: its code and fate still decide
 * what becomes of the job.
 */
export function isWarrenError(value: unknown): value is WarrenError {
  if (value instanceof WarrenError) return true;
  if (!(value instanceof Error) || (value as { [WARREN_ERROR]?: unknown })[WARREN_ERROR] !== true) {
    return false;
  }
  // What the job's fate is read from must be there, whatever version the other copy is.
  const { code, fate } = value as { code?: unknown; fate?: unknown };
  return (
    typeof code === 'string' && (fate === 'retry' || fate === 'dead-letter' || fate === 'crash')
  );
}

/**
 * An error whose code covers several refusals, each named by its `reason`: the dead letter's
 * `x-warren-reason` (see `reasonFor`), where other errors derive one from their code.
 */
export abstract class ReasonedError<Reason extends string> extends WarrenError {
  constructor(
    readonly reason: Reason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Why a message could not be decoded; written to the `x-warren-reason` header. */
export type MalformedReason =
  | 'empty-body'
  | 'not-utf8'
  | 'not-json'
  | 'unsupported-content-type'
  | 'invalid-envelope';

/** The body or the envelope headers cannot be read. Retrying would fail the same way. */
export class MalformedMessageError extends ReasonedError<MalformedReason> {
  readonly code = 'WARREN_MALFORMED_MESSAGE';
  readonly fate = 'dead-letter';
}

/** The body is JSON but does not match the handler's input schema. */
export class SchemaViolationError extends WarrenError {
  readonly code = 'WARREN_SCHEMA_VIOLATION';
  readonly fate = 'dead-letter';
}

/**
 * The handler threw something that is not a Warren error; the original is the `cause`. Taken
 * for a transient failure: the job is retried with backoff.
 */
export class HandlerError extends WarrenError {
  readonly code = 'WARREN_HANDLER_FAILED';
  readonly fate = 'retry';
}

/** Why a job's signature was refused; written to the `x-warren-reason` header. */
export type SignatureRefusal =
  | 'unsigned'
  | 'algorithm-not-allowed'
  | 'unknown-key'
  | 'bad-signature'
  | 'stale'
  | 'replayed';

/**
 * The job's signature does not prove who produced it: missing, made with a key or algorithm the
 * worker does not accept, not matching the body and signed headers, too old or too new, or a
 * message id seen already. The job is never handled; retrying would be refused the same way.
 */
export class SignatureRefusedError extends ReasonedError<SignatureRefusal> {
  readonly code = 'WARREN_SIGNATURE_INVALID';
  readonly fate = 'dead-letter';
}

/** Why an encrypted job's body could not be opened, or a plaintext one was refused. */
export type DecryptionRefusal =
  | 'no-decryptor'
  | 'unencrypted'
  | 'unsupported-encryption'
  | 'unknown-encryption-key'
  | 'malformed-encryption'
  | 'decryption-failed';

/**
 * The job's body is encrypted and cannot be opened here (no keys, a key id or algorithm this
 * worker does not hold, a ciphertext too short, or one that does not authenticate: tampered,
 * moved from another job, or sealed with another key), or it is plaintext on a worker that
 * requires encryption. Never handled; the dead letter keeps the ciphertext as it arrived.
 */
export class DecryptionRefusedError extends ReasonedError<DecryptionRefusal> {
  readonly code = 'WARREN_DECRYPTION_REFUSED';
  readonly fate = 'dead-letter';
}

/** Why a job was refused for clearance; written to `x-warren-reason`. */
export type ForbiddenReason = 'scope-not-cleared' | 'tenant-not-cleared' | 'producer-not-allowed';

/**
 * The consumer is not cleared for the job: its scope or tenant lies outside the handler's
 * clearance, or the account that published it (the broker-validated `user_id`) is not among the
 * producers allowed for its scope. The job is never handled; it is dead-lettered and audited.
 */
export class ForbiddenError extends ReasonedError<ForbiddenReason> {
  readonly code = 'WARREN_FORBIDDEN';
  readonly fate = 'dead-letter';
}

/** Why an identity could not be turned into a job's tenant, scope and routing key. */
export type IdentityRefusal =
  | 'malformed'
  | 'bad-signature'
  | 'unknown-key'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'untrusted'
  | 'no-rule'
  | 'jwks-unavailable';

/**
 * Producer side: an identity (an OIDC token, an AWS IAM principal) was not accepted, or no rule
 * maps it to a tenant and scope. Nothing is published; the caller answers 401 or 403.
 */
export class IdentityRefusedError extends ReasonedError<IdentityRefusal> {
  readonly code = 'WARREN_IDENTITY_REFUSED';
  readonly fate = 'dead-letter';
}

/** Thrown by a handler for a job that can never succeed: dead-lettered without retries. */
export class JobRejectedError extends WarrenError {
  readonly code = 'WARREN_JOB_REJECTED';
  readonly fate = 'dead-letter';
}

/** The handler returned a value that cannot be written as JSON (a BigInt, a cycle). */
export class InvalidResultError extends WarrenError {
  readonly code = 'WARREN_INVALID_RESULT';
  readonly fate = 'dead-letter';
}

/** The job's deadline passed before or while it was handled. */
export class DeadlineExceededError extends WarrenError {
  readonly code = 'WARREN_DEADLINE_EXCEEDED';
  readonly fate = 'dead-letter';
}

/**
 * The job could run longer than the broker lets a delivery stay unacked (RabbitMQ's
 * `consumer_timeout`): refused when its deadline lies beyond that, or stopped before the broker
 * would close the channel under it.
 */
export class ConsumerTimeoutError extends WarrenError {
  readonly code = 'WARREN_CONSUMER_TIMEOUT';
  readonly fate = 'dead-letter';
}

/** An input is longer than the model accepts and the model is set to refuse, not truncate. */
export class InputTooLongError extends WarrenError {
  readonly code = 'WARREN_INPUT_TOO_LONG';
  readonly fate = 'dead-letter';
}

/** A model call failed (remote endpoint error, runtime error) for this input; retried. */
export class InferenceError extends WarrenError {
  readonly code = 'WARREN_INFERENCE_FAILED';
  readonly fate = 'retry';
}

/**
 * The dedupe store could not be asked whether the job already ran (Redis unreachable, say). The
 * job is not run, since it might duplicate a result, and is retried like a transient failure:
 * with backoff, and dead-lettered after the last attempt rather than waiting for ever.
 */
export class DedupeUnavailableError extends WarrenError {
  readonly code = 'WARREN_DEDUPE_UNAVAILABLE';
  readonly fate = 'retry';
}

/** A model could not be loaded: a worker fault, not the message's. */
export class ModelLoadError extends WarrenError {
  readonly code = 'WARREN_MODEL_LOAD_FAILED';
  readonly fate = 'crash';
}

/** A result or dead letter could not be published (broker nack, closed channel). */
export class PublishError extends WarrenError {
  readonly code = 'WARREN_PUBLISH_FAILED';
  readonly fate = 'crash';
}

/**
 * The transport already holds as many unconfirmed publishes as it may (messages or bytes),
 * typically because the broker connection is down and being recovered. Nothing was sent; the
 * same publish may succeed once the connection is back.
 */
export class PublishBufferFullError extends WarrenError {
  readonly code = 'WARREN_PUBLISH_BUFFER_FULL';
  readonly fate = 'retry';
}

/**
 * A result reached no queue: its `reply_to` queue is gone, or nothing is bound to the results
 * exchange for it. The job is dead-lettered so that it can be replayed, not silently lost.
 */
export class UnroutableError extends WarrenError {
  readonly code = 'WARREN_RESULT_UNROUTABLE';
  readonly fate = 'dead-letter';
}

/**
 * Producer side: no queue is bound for the job's routing key (a misspelt model type, a scope no
 * worker serves, or no worker has declared the queue yet). The broker returned it; nothing is
 * queued, and the caller decides whether to publish again.
 */
export class JobUnroutableError extends WarrenError {
  readonly code = 'WARREN_JOB_UNROUTABLE';
  readonly fate = 'dead-letter';
}

/** The broker cannot be reached or refused the connection. */
export class BrokerUnreachableError extends WarrenError {
  readonly code = 'WARREN_BROKER_UNREACHABLE';
  readonly fate = 'crash';
}

/** A configuration value is missing or of the wrong shape; the message names the field. */
export class ConfigError extends WarrenError {
  readonly code = 'WARREN_CONFIG_INVALID';
  readonly fate = 'crash';
}

/** A plugin module does not export a handler made with `defineHandler`. */
export class PluginError extends WarrenError {
  readonly code = 'WARREN_PLUGIN_INVALID';
  readonly fate = 'crash';
}

/** A call was made in a lifecycle state that does not allow it. */
export class IllegalStateError extends WarrenError {
  readonly code = 'WARREN_ILLEGAL_STATE';
  readonly fate = 'crash';
}

/** Any thrown value as a Warren error: Warren errors pass through, others become `fallback`. */
export function toWarrenError(
  error: unknown,
  fallback: (message: string, cause: unknown) => WarrenError,
): WarrenError {
  if (isWarrenError(error)) return error;
  return fallback(describeThrown(error), error);
}

/** Whether `error` is a worker fault (fate `crash`): not the job's doing, the consumer stops. */
export function isWorkerFault(error: unknown): error is WarrenError {
  return isWarrenError(error) && error.fate === 'crash';
}

/** A thrown value's message; never throws itself, whatever was thrown. */
export function describeThrown(error: unknown): string {
  try {
    if (error instanceof Error) return String(error.message);
    return String(error);
  } catch {
    return `a thrown ${typeof error} that cannot be printed`;
  }
}
