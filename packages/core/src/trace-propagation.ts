import {
  type Context,
  context,
  diag,
  type Exception,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { ATTR, INSTRUMENTATION_SCOPE, OTHER_ERROR } from './telemetry-names.ts';
import type { HeaderValue } from './transport.ts';

type Headers = Record<string, HeaderValue>;

/**
 * Reads trace context from AMQP headers. Byte-array headers arrive as Buffers from some clients,
 * though {@link HeaderValue} leaves them out; they are read as UTF-8 like the envelope's.
 */
const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => Object.keys(headers),
  get(headers, key) {
    const value: unknown = headers[key];
    if (typeof value === 'string') return value;
    return Buffer.isBuffer(value) ? value.toString('utf-8') : undefined;
  },
};

const headerSetter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

/**
 * The context a message carries (W3C `traceparent`, `tracestate`, `baggage`, or whatever the
 * registered propagator reads), on top of `parent`. Without a registered propagator: `parent`.
 */
export function extractContext(headers: Headers | undefined, parent: Context = ROOT_CONTEXT) {
  return headers === undefined ? parent : propagation.extract(parent, headers, headerGetter);
}

/**
 * Writes `context` into `headers` through the registered propagator. A `tracestate` belongs to
 * the `traceparent` it came with, so a new `traceparent` drops an old `tracestate` it did not
 * replace; a header the propagator does not write (baggage it did not parse, say) stays as it was.
 */
export function injectContext(context: Context, headers: Headers): void {
  const written: Record<string, string> = {};
  propagation.inject(context, written, headerSetter);
  if (written.traceparent !== undefined) delete headers.tracestate;
  Object.assign(headers, written);
}

/** What the API hands out while no SDK is registered, to tell it apart from a real provider. */
const NO_PROVIDER = new ProxyTracerProvider().getDelegate();

let cached: { provider: TracerProvider; tracer: Tracer } | undefined;

/**
 * Core's tracer, or undefined while no tracer provider is registered: then callers skip tracing
 * altogether (no span objects, no attributes, no header copies). Checked per job, without
 * allocating, so that an SDK registered after a consumer was made still takes effect.
 */
export function activeTracer(): Tracer | undefined {
  let provider = trace.getTracerProvider();
  if (provider instanceof ProxyTracerProvider) {
    provider = provider.getDelegate();
    if (provider === NO_PROVIDER) return undefined;
  }
  if (cached?.provider !== provider) {
    try {
      cached = { provider, tracer: provider.getTracer(INSTRUMENTATION_SCOPE) };
    } catch (error) {
      telemetryFailed('tracer', error);
      return undefined;
    }
  }
  return cached.tracer;
}

/**
 * Runs `work` with `active` as the active context. Should the context manager itself throw, the
 * work runs all the same, outside it: a broken SDK costs the job its context, never the job.
 */
export function runInContext<T>(active: Context, work: () => T): T {
  let started = false;
  try {
    return context.with(active, () => {
      started = true;
      return work();
    });
  } catch (error) {
    if (started) throw error;
    telemetryFailed('context manager', error);
    return work();
  }
}

/** The low-cardinality type of an error for `error.type`: its Warren code, else `_OTHER`. */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('WARREN_') ? code : OTHER_ERROR;
}

/** Marks a span failed: the exception recorded, `error.type` set, status ERROR with the type. */
export function failSpan(span: Span, error: unknown, type: string = errorType(error)): void {
  if (error instanceof Error) span.recordException(error as Exception);
  span.setAttribute(ATTR.errorType, type);
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
}

/**
 * Reports a failure of Warren's own telemetry code, or of the SDK under it, to OpenTelemetry's
 * diagnostic logger (silent unless the SDK set-up configures one). Telemetry never fails a job.
 */
export function telemetryFailed(what: string, error: unknown): void {
  try {
    diag.warn(`@warren/core: ${what} failed; the job goes on without it`, error);
  } catch {
    // A logger that throws has nowhere left to report to.
  }
}

/** Runs a telemetry step; a throw is reported and swallowed. */
export function guarded(what: string, step: () => void): void {
  try {
    step();
  } catch (error) {
    telemetryFailed(what, error);
  }
}
