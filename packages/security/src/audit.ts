import { appendFileSync } from 'node:fs';
import { trace } from '@opentelemetry/api';
import { type Delivery, HEADERS, type Verdict } from '@warren/core';

/** One line of the audit log. */
export interface AuditEntry {
  time: string;
  event: string;
  decision: 'accepted' | 'refused';
  reason?: string;
  /** Who produced the job, as far as is known: the key id it names. */
  identity?: string;
  tenant?: string;
  queue?: string;
  messageId?: string;
  /** The active span's trace id, when a tracer is registered. */
  traceId?: string;
  message?: string;
}

/**
 * An append-only JSON-lines audit log: one line per decision, written synchronously with
 * O_APPEND before the job is settled, so a refusal is on disk before its dead letter exists.
 * Several processes may append to one file; each line is one write.
 */
export class JsonLinesAuditLog {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  record(entry: AuditEntry): void {
    appendFileSync(this.#path, `${JSON.stringify(entry)}\n`, { flag: 'a', mode: 0o600 });
  }
}

/**
 * An `onDecision` listener for `SignatureVerifier` that writes each refusal to `log` (and each
 * acceptance too, with `accepted: true`). Bodies and signatures are never written.
 */
export function auditDecisions(
  log: { record(entry: AuditEntry): void },
  options: { accepted?: boolean; now?: () => number } = {},
): (delivery: Delivery, verdict: Verdict) => void {
  const now = options.now ?? Date.now;
  return (delivery, verdict) => {
    if (verdict.accepted && !options.accepted) return;
    const tenant = delivery.properties.headers?.[HEADERS.tenant];
    const traceId = trace.getActiveSpan()?.spanContext().traceId;
    const entry: AuditEntry = {
      time: new Date(now()).toISOString(),
      event: 'warren.job.verified',
      decision: verdict.accepted ? 'accepted' : 'refused',
      ...(verdict.accepted ? {} : { reason: verdict.reason, message: verdict.message }),
      ...(verdict.keyId === undefined ? {} : { identity: `key:${verdict.keyId}` }),
      ...(typeof tenant === 'string' ? { tenant } : {}),
      queue: delivery.queue,
      ...(delivery.properties.messageId === undefined
        ? {}
        : { messageId: delivery.properties.messageId }),
      ...(traceId === undefined ? {} : { traceId }),
    };
    log.record(entry);
  };
}
