import {
  type AuditSink,
  audit,
  type ConnectionEvent,
  identityOf,
  type LogSink,
} from '@warren/core';

/** The audit events of broker credentials (docs/credentials.md#what-is-logged-and-audited). */
export const CREDENTIALS_ROTATED = 'warren.credentials.rotated';
export const CREDENTIALS_ROTATION_FAILED = 'warren.credentials.rotation-failed';

/**
 * A connection listener that writes each credentials rotation, and each failed one, to the audit
 * log: who (`user:<name>`), when, and for a failure why. Never a password: the entries are built
 * from the user name and the failure's message, which names no secret.
 */
export function auditRotations(
  sink: AuditSink,
  logger: LogSink,
  now: () => number = Date.now,
): (event: ConnectionEvent) => void {
  const onError = (error: unknown) => {
    logger.error({ err: error }, 'audit log write failed');
  };
  return (event) => {
    if (event.type === 'rotated') {
      const entry = {
        event: CREDENTIALS_ROTATED,
        decision: 'accepted' as const,
        identity: identityOf({ user: event.username }),
        message: 'the broker connection now logs in with new credentials',
      };
      audit(sink, entry, now(), onError);
    } else if (event.type === 'rotation-failed') {
      const entry = {
        event: CREDENTIALS_ROTATION_FAILED,
        decision: 'refused' as const,
        reason: /ACCESS.REFUSED/.test(event.cause.message) ? 'access-refused' : 'not-ready',
        identity: identityOf({ user: event.username }),
        message:
          `${event.cause.message}; the previous connection goes on, attempt ` +
          `${event.attempt + 1} in ${event.retryInMs} ms`,
      };
      audit(sink, entry, now(), onError);
    }
  };
}

/** Audits new credentials refused before any dial because they name another user. */
export function auditOtherUser(
  sink: AuditSink,
  username: string,
  message: string,
  now: () => number = Date.now,
): void {
  const entry = {
    event: CREDENTIALS_ROTATION_FAILED,
    decision: 'refused' as const,
    reason: 'user-changed',
    identity: identityOf({ user: username }),
    message,
  };
  audit(sink, entry, now());
}
