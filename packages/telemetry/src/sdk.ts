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
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
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
import type { LogSink } from '@warren/core';
import { diagLogTo } from './diag-log.ts';
import { PROMETHEUS_CONTENT_TYPE, type PrometheusMetrics } from './prometheus.ts';
import type { PropagatorName, SdkLogLevel, TelemetrySettings } from './settings.ts';

// The OpenTelemetry SDK, its exporters and their dependencies: start-telemetry.ts imports this
// module only when something is to be exported, so a process without telemetry never loads them.

/** The providers one start registered with the API. */
export interface SdkProviders {
  tracerProvider: NodeTracerProvider | undefined;
  meterProvider: MeterProvider | undefined;
  prometheus: PrometheusMetrics | undefined;
}

const DIAG_LEVELS: Record<SdkLogLevel, DiagLogLevel> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

/**
 * Registers tracing and metering with the API as `settings` ask, Prometheus metrics too when
 * `wantPrometheus`, and sends the SDK's diagnostics to `logger`.
 */
export function startSdk(
  settings: TelemetrySettings,
  serviceName: string | undefined,
  wantPrometheus: boolean,
  logger: LogSink,
): SdkProviders {
  diag.setLogger(diagLogTo(logger), {
    logLevel: DIAG_LEVELS[settings.sdkLogLevel],
    suppressOverrideMessage: true,
  });
  const resource = resourceFor(serviceName);
  const tracerProvider = startTracing(settings, resource);
  const { meterProvider, prometheus } = startMetering(settings, resource, wantPrometheus, logger);
  return { tracerProvider, meterProvider, prometheus };
}

/** Flushes and shuts the providers down, then takes everything back from the API. */
export async function stopSdk(
  providers: SdkProviders,
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

/**
 * A pull reader for the meter provider and the text it produces. The exporter's own HTTP server
 * is never started: the worker serves the text on its health port, so there is one port to open.
 */
function prometheusReader(logger: LogSink): {
  reader: PrometheusExporter;
  metrics: PrometheusMetrics;
} {
  const reader = new PrometheusExporter({ preventServerStart: true });
  const serializer = new PrometheusSerializer();
  const metrics: PrometheusMetrics = {
    contentType: PROMETHEUS_CONTENT_TYPE,
    async collect() {
      const { resourceMetrics, errors } = await reader.collect();
      // A failing callback costs its own metric, not the scrape.
      if (errors.length > 0) {
        logger.warn({ errors: errors.length, err: errors[0] }, 'metrics collected with errors');
      }
      return serializer.serialize(resourceMetrics);
    },
  };
  return { reader, metrics };
}
