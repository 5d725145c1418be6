import { isSpanContextValid, trace } from '@opentelemetry/api';

/** The active span's identity as log fields, named as OpenTelemetry's log data model has them. */
export interface TraceLogFields {
  trace_id?: string;
  span_id?: string;
  /** W3C trace flags as two hex digits: `01` when sampled. */
  trace_flags?: string;
}

/**
 * The ids of the span active where a line is logged, or no fields outside any span. Made to be
 * a pino `mixin` (`pino({ mixin: traceLogFields })`), so every line written inside a job ties to
 * its trace. Costs one context lookup per line; without a registered context manager (tracing
 * off) there is never an active span.
 */
export function traceLogFields(): TraceLogFields {
  const span = trace.getActiveSpan();
  // A fresh object each time: pino merges the line's own fields into what the mixin returns.
  if (span === undefined) return {};
  const context = span.spanContext();
  if (!isSpanContextValid(context)) return {};
  return {
    trace_id: context.traceId,
    span_id: context.spanId,
    trace_flags: context.traceFlags.toString(16).padStart(2, '0'),
  };
}
