import { IllegalStateError, type LogSink, redactServiceUrl, silentLogSink } from '@warren/core';
import type { PrometheusMetrics } from './prometheus.ts';
import type { SdkProviders } from './sdk.ts';
import { readTelemetrySettings, type TelemetrySettings } from './settings.ts';

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

/** The one started in this process: the API's providers are process-wide. */
let current: Telemetry | undefined;
/** A start is loading the SDK: a second start meanwhile is refused as if it had finished. */
let starting = false;

/**
 * Sets OpenTelemetry up from the OTEL_* environment variables (see {@link readTelemetrySettings}
 * and the package README): resource, sampler, exporters and propagators. With nothing configured,
 * or OTEL_SDK_DISABLED=true, it registers nothing and the API stays a no-op, so instrumented code
 * costs next to nothing: the SDK and its exporters are not even imported. Rejects with
 * `ConfigError` for a variable it cannot honour, and with `IllegalStateError` while another start
 * has not been shut down.
 */
export async function startTelemetry(options: TelemetryOptions = {}): Promise<Telemetry> {
  if (current !== undefined) {
    throw new IllegalStateError('telemetry is already started; shut it down before starting again');
  }
  if (starting) {
    throw new IllegalStateError(
      'telemetry is being started by an earlier call; wait for it before starting again',
    );
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

  starting = true;
  let sdk: typeof import('./sdk.ts');
  let started: SdkProviders;
  try {
    sdk = await import('./sdk.ts');
    started = sdk.startSdk(settings, options.serviceName, wantPrometheus, logger);
  } finally {
    starting = false;
  }
  const { tracerProvider, meterProvider, prometheus } = started;
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
      stopping ??= sdk.stopSdk(started, logger, options.shutdownTimeoutMs).then(() => {
        current = undefined;
      });
      return stopping;
    },
  };
  current = telemetry;
  return telemetry;
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

function forLog(endpoint: string | undefined): string {
  return endpoint === undefined
    ? `${OTLP_DEFAULT_ENDPOINT} (default)`
    : redactServiceUrl(endpoint, HTTP_SCHEMES, '(not a URL)');
}
