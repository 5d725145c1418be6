import { trace } from '@opentelemetry/api';

/**
 * One audit record: who did what to which job, and what was decided. Written by an
 * {@link AuditSink} (`@warren/security`'s `JsonLinesAuditLog` writes one JSON line each) and,
 * when a span is active, added to it as an event of the same name.
 */
export interface AuditEntry {
  /** ISO 8601, UTC. */
  time: string;
  /** `warren.job.admitted`, `warren.job.published`, `warren.credentials.rotated`, ... */
  event: string;
  decision: 'accepted' | 'refused';
  /** Why it was refused: the `x-warren-reason` of the dead letter. */
  reason?: string;
  /** Who: `user:<broker account>` and `key:<signing key id>`, as far as they are known. */
  identity?: string;
  tenant?: string;
  scope?: string;
  queue?: string;
  messageId?: string;
  /** For a publish: `job`, `result`, `retry`, `defer`, `requeue` or `dead-letter`. */
  action?: string;
  traceId?: string;
  message?: string;
}

/** Where audit entries go. `record` must not throw for a write it cannot make: log it instead. */
export interface AuditSink {
  record(entry: AuditEntry): void;
}

/**
 * Records `entry` with the time and the active trace id, and adds it to the active span as an
 * event. A sink that throws is reported through `onError` and never changes what was decided.
 */
export function audit(
  sink: AuditSink | undefined,
  entry: Omit<AuditEntry, 'time' | 'traceId'>,
  now: number,
  onError?: (error: unknown) => void,
): void {
  const span = trace.getActiveSpan();
  const traceId = span?.spanContext().traceId;
  // Fields left undefined (a tenant not known yet, say) are left out of the record.
  const full = { time: new Date(now).toISOString() } as AuditEntry;
  for (const [key, value] of Object.entries(entry)) {
    if (value !== undefined) (full as unknown as Record<string, unknown>)[key] = value;
  }
  if (traceId !== undefined) full.traceId = traceId;
  span?.addEvent(entry.event, spanAttributes(full));
  if (sink === undefined) return;
  try {
    sink.record(full);
  } catch (error) {
    onError?.(error);
  }
}

/**
 * Whether an audit record would go anywhere: to a sink, or to a span being recorded. Callers
 * build no entry when not, since they run for every job.
 */
export function auditing(sink: AuditSink | undefined): boolean {
  return sink !== undefined || trace.getActiveSpan()?.isRecording() === true;
}

/** Joins the parts of an identity that are known: `user:svc-a key:k1`. */
export function identityOf(parts: {
  user?: string | undefined;
  keyId?: string | undefined;
}): string | undefined {
  const known = [
    parts.user === undefined ? undefined : `user:${parts.user}`,
    parts.keyId === undefined ? undefined : `key:${parts.keyId}`,
  ].filter((part) => part !== undefined);
  return known.length === 0 ? undefined : known.join(' ');
}

function spanAttributes(entry: AuditEntry): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (key !== 'event' && key !== 'traceId' && typeof value === 'string') {
      attributes[`warren.audit.${key}`] = value;
    }
  }
  return attributes;
}
