import {
  context,
  DiagLogLevel,
  diag,
  metrics,
  propagation,
  type TextMapPropagator,
  trace,
} from '@opentelemetry/api';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { OTLPMetricExporter as OtlpJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OtlpProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as OtlpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  defaultResource,
  detectResources,
  envDetector,
  type Resource,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  ConsoleMetricExporter,
  type IMetricReader,
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { IllegalStateError, type LogSink, redactServiceUrl, silentLogSink } from '@warren/core';
import { diagLogTo } from './diag-log.ts';
import { type PrometheusMetrics, prometheusReader } from './prometheus.ts';
import {
  type PropagatorName,
  readTelemetrySettings,
  type SdkLogLevel,
  type TelemetrySettings,
} from './settings.ts';

export interface TelemetryOptions {
  /** `service.name` when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES sets one. */
  serviceName?: string;
  /**
   * Keep metrics for a Prometheus scrape ({@link Telemetry.prometheus}) whatever
   * OTEL_METRICS_EXPORTER says; nothing listens until the caller serves the text.
   */
  prometheus?: boolean;
  /** Where the SDK's diagnostics and telemetry's own lines go (default: nowhere). */
  logger?: LogSink;
  /** The longest {@link Telemetry.shutdown} waits for the last export (default 10 s). */
  shutdownTimeoutMs?: number;
}

/** What {@link startTelemetry} set up, and the way to flush and undo it. */
export interface Telemetry {
  /** The OTEL_* settings as read. */
  readonly settings: TelemetrySettings;
  /** A tracer provider, context manager and propagators are registered with the API. */
  readonly tracing: boolean;
  /** A meter provider is registered with the API. */
  readonly metering: boolean;
  /** The metrics as Prometheus text, when asked for by option or by OTEL_METRICS_EXPORTER. */
  readonly prometheus: PrometheusMetrics | undefined;
  /** Exports what is buffered now. */
  forceFlush(): Promise<void>;
  /**
   * Exports what is buffered (within `shutdownTimeoutMs`), stops the exporters and unregisters
   * everything from the API. Never rejects; safe to call more than once.
   */
  shutdown(): Promise<void>;
}

const HTTP_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:']);
const OTLP_DEFAULT_ENDPOINT = 'http://localhost:4318';

const DIAG_LEVELS: Record<SdkLogLevel, DiagLogLevel> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

/** The one started in this process: the API's providers are process-wide. */
let current: Telemetry | undefined;

/**
 * Sets OpenTelemetry up from the OTEL_* environment variables (see {@link readTelemetrySettings}
 * and the package README): resource, sampler, exporters and propagators. With nothing configured,
 * or OTEL_SDK_DISABLED=true, it registers nothing and the API stays a no-op, so instrumented code
 * costs next to nothing. Throws `ConfigError` for a variable it cannot honour, and
 * `IllegalStateError` while another start has not been shut down.
 */
export function startTelemetry(options: TelemetryOptions = {}): Telemetry {
  if (current !== undefined) {
    throw new IllegalStateError('telemetry is already started; shut it down before starting again');
  }
  const logger = options.logger ?? silentLogSink;
  const settings = readTelemetrySettings();
  const wantPrometheus =
    !settings.disabled &&
    (options.prometheus === true || settings.metrics.exporters.includes('prometheus'));
  const exporting = settings.traces.exporters.length + settings.metrics.exporters.length > 0;
  if (settings.disabled || (!exporting && !wantPrometheus)) {
    const reason = settings.disabled ? 'OTEL_SDK_DISABLED' : 'no exporter configured';
    logger.info({ reason }, 'telemetry off');
    return offTelemetry(settings);
  }

  diag.setLogger(diagLogTo(logger), {
    logLevel: DIAG_LEVELS[settings.sdkLogLevel],
    suppressOverrideMessage: true,
  });
  const resource = resourceFor(options.serviceName);
  const tracerProvider = startTracing(settings, resource);
  const { meterProvider, prometheus } = startMetering(settings, resource, wantPrometheus, logger);
  logger.info(startedFields(settings, prometheus !== undefined), 'telemetry started');

  let stopping: Promise<void> | undefined;
  const telemetry: Telemetry = {
    settings,
    tracing: tracerProvider !== undefined,
    metering: meterProvider !== undefined,
    prometheus,
    async forceFlush() {
      await Promise.all([tracerProvider?.forceFlush(), meterProvider?.forceFlush()]);
    },
    shutdown() {
      stopping ??= stop({ tracerProvider, meterProvider }, logger, options.shutdownTimeoutMs);
      return stopping;
    },
  };
  current = telemetry;
  return telemetry;
}

/** Flushes and shuts the providers down, then takes everything back from the API. */
async function stop(
  providers: { tracerProvider?: NodeTracerProvider; meterProvider?: MeterProvider },
  logger: LogSink,
  timeoutMs = 10_000,
): Promise<void> {
  const { tracerProvider, meterProvider } = providers;
  const flushed = Promise.allSettled([tracerProvider?.shutdown(), meterProvider?.shutdown()]);
  const outcome = await within(flushed, timeoutMs);
  if (outcome === 'timeout') {
    logger.warn({ timeoutMs }, 'telemetry flush timed out');
  } else {
    for (const result of outcome) {
      if (result.status === 'rejected')
        logger.warn({ err: result.reason }, 'telemetry flush failed');
    }
  }

  if (tracerProvider !== undefined) {
    trace.disable();
    context.disable();
    propagation.disable();
  }
  if (meterProvider !== undefined) metrics.disable();
  diag.disable();
  current = undefined;
}

/** What the start line says: the exporters per signal, and where OTLP goes (no credentials). */
function startedFields(settings: TelemetrySettings, prometheus: boolean): object {
  const { traces, metrics: meters } = settings;
  return {
    traces: traces.exporters,
    metrics: [...new Set([...meters.exporters, ...(prometheus ? ['prometheus'] : [])])],
    ...(traces.exporters.includes('otlp') ? { tracesEndpoint: forLog(traces.endpoint) } : {}),
    ...(meters.exporters.includes('otlp') ? { metricsEndpoint: forLog(meters.endpoint) } : {}),
  };
}

function offTelemetry(settings: TelemetrySettings): Telemetry {
  return {
    settings,
    tracing: false,
    metering: false,
    prometheus: undefined,
    forceFlush: async () => {},
    shutdown: async () => {},
  };
}

/** The SDK's defaults, then ours, then what the environment says, each overriding the last. */
function resourceFor(serviceName: string | undefined): Resource {
  let resource = defaultResource();
  if (serviceName !== undefined) {
    resource = resource.merge(resourceFromAttributes({ 'service.name': serviceName }));
  }
  return resource.merge(detectResources({ detectors: [envDetector] }));
}

function startTracing(
  settings: TelemetrySettings,
  resource: Resource,
): NodeTracerProvider | undefined {
  const { exporters, protocol } = settings.traces;
  if (exporters.length === 0) return undefined;
  const spanProcessors: SpanProcessor[] = exporters.map((name) =>
    name === 'console'
      ? new SimpleSpanProcessor(new ConsoleSpanExporter())
      : new BatchSpanProcessor(
          // Endpoint, headers, timeout and compression: the exporter reads OTEL_EXPORTER_OTLP_*.
          protocol === 'http/json' ? new OtlpJsonTraceExporter() : new OtlpProtoTraceExporter(),
        ),
  );
  // The sampler comes from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read by the SDK.
  const provider = new NodeTracerProvider({ resource, spanProcessors });
  provider.register({ propagator: propagatorFor(settings.propagators) });
  return provider;
}

function startMetering(
  settings: TelemetrySettings,
  resource: Resource,
  wantPrometheus: boolean,
  logger: LogSink,
): { meterProvider: MeterProvider | undefined; prometheus: PrometheusMetrics | undefined } {
  const { exporters, protocol, exportIntervalMs, exportTimeoutMs } = settings.metrics;
  const readers: IMetricReader[] = [];
  const periodic = (exporter: PushMetricExporter) =>
    new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis: exportIntervalMs,
      exportTimeoutMillis: exportTimeoutMs,
    });
  if (exporters.includes('otlp')) {
    readers.push(
      periodic(
        protocol === 'http/json' ? new OtlpJsonMetricExporter() : new OtlpProtoMetricExporter(),
      ),
    );
  }
  if (exporters.includes('console')) readers.push(periodic(new ConsoleMetricExporter()));
  let prometheus: PrometheusMetrics | undefined;
  if (wantPrometheus) {
    const pull = prometheusReader(logger);
    readers.push(pull.reader);
    prometheus = pull.metrics;
  }
  if (readers.length === 0) return { meterProvider: undefined, prometheus };
  const meterProvider = new MeterProvider({ resource, readers });
  metrics.setGlobalMeterProvider(meterProvider);
  return { meterProvider, prometheus };
}

function propagatorFor(names: PropagatorName[]): TextMapPropagator | null {
  if (names.length === 0) return null;
  return new CompositePropagator({
    propagators: names.map((name) =>
      name === 'tracecontext' ? new W3CTraceContextPropagator() : new W3CBaggagePropagator(),
    ),
  });
}

function forLog(endpoint: string | undefined): string {
  return endpoint === undefined
    ? `${OTLP_DEFAULT_ENDPOINT} (default)`
    : redactServiceUrl(endpoint, HTTP_SCHEMES, '(not a URL)');
}

async function within<T>(work: Promise<T>, timeoutMs: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
