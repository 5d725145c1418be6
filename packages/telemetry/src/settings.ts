import { ConfigError, serviceUrlProblem } from '@warren/core';

/** Where spans go: an OTLP/HTTP collector, or stdout (for a look while developing). */
export type TraceExporterName = 'otlp' | 'console';
/** Where metrics go; `prometheus` serves them for scraping instead of sending them. */
export type MetricExporterName = 'otlp' | 'console' | 'prometheus';
/** OTLP over HTTP, with protobuf bodies (the OpenTelemetry default) or JSON ones. */
export type OtlpProtocol = 'http/protobuf' | 'http/json';
export type PropagatorName = 'tracecontext' | 'baggage';
/** How much of the SDK's own diagnostics reach the log (OTEL_LOG_LEVEL). */
export type SdkLogLevel = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'verbose' | 'all';

/** What the OTEL_* environment variables ask for, checked (see {@link readTelemetrySettings}). */
export interface TelemetrySettings {
  /** OTEL_SDK_DISABLED=true: nothing is set up at all. */
  disabled: boolean;
  traces: {
    exporters: TraceExporterName[];
    protocol: OtlpProtocol;
    /** The endpoint variable that applies, as set (the exporter reads it itself), if any. */
    endpoint: string | undefined;
  };
  metrics: {
    exporters: MetricExporterName[];
    protocol: OtlpProtocol;
    endpoint: string | undefined;
    exportIntervalMs: number;
    exportTimeoutMs: number;
  };
  propagators: PropagatorName[];
  sdkLogLevel: SdkLogLevel;
}

type Env = Readonly<Record<string, string | undefined>>;

const TRACE_EXPORTERS = ['otlp', 'console'] as const;
const METRIC_EXPORTERS = ['otlp', 'console', 'prometheus'] as const;
const PROTOCOLS = ['http/protobuf', 'http/json'] as const;
const PROPAGATORS = ['tracecontext', 'baggage'] as const;
const SDK_LOG_LEVELS = ['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all'] as const;
const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

/**
 * Reads and checks the OTEL_* variables Warren honours. One departure from the OpenTelemetry
 * defaults: a signal with no OTEL_*_EXPORTER variable is exported over OTLP only when an OTLP
 * endpoint is set for it, so that a worker nobody configured never dials localhost:4318.
 * Values the SDK would silently ignore (an unknown exporter, sampler or protocol) throw
 * {@link ConfigError} naming the variable, so a typo does not leave a fleet untraced.
 */
export function readTelemetrySettings(env: Env = process.env): TelemetrySettings {
  const disabled = readBoolean(env, 'OTEL_SDK_DISABLED');
  const tracesEndpoint = readEndpoint(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', disabled);
  const metricsEndpoint = readEndpoint(env, 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', disabled);
  const sharedEndpoint = readEndpoint(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', disabled);
  const settings: TelemetrySettings = {
    disabled,
    traces: {
      exporters: [],
      protocol: 'http/protobuf',
      endpoint: tracesEndpoint ?? sharedEndpoint,
    },
    metrics: {
      exporters: [],
      protocol: 'http/protobuf',
      endpoint: metricsEndpoint ?? sharedEndpoint,
      exportIntervalMs: 60_000,
      exportTimeoutMs: 30_000,
    },
    propagators: [],
    sdkLogLevel: 'warn',
  };
  // A switched-off SDK reads nothing more, so a stale setting cannot stop the worker.
  if (disabled) return settings;

  // Unset, a signal goes over OTLP only where an endpoint says where to.
  settings.traces.exporters = readExporters(
    env,
    'OTEL_TRACES_EXPORTER',
    TRACE_EXPORTERS,
    settings.traces.endpoint === undefined ? [] : ['otlp'],
  );
  settings.metrics.exporters = readExporters(
    env,
    'OTEL_METRICS_EXPORTER',
    METRIC_EXPORTERS,
    settings.metrics.endpoint === undefined ? [] : ['otlp'],
  );
  const sharedProtocol = readOne(env, 'OTEL_EXPORTER_OTLP_PROTOCOL', PROTOCOLS);
  settings.traces.protocol =
    readOne(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', PROTOCOLS) ??
    sharedProtocol ??
    'http/protobuf';
  settings.metrics.protocol =
    readOne(env, 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', PROTOCOLS) ??
    sharedProtocol ??
    'http/protobuf';
  settings.metrics.exportIntervalMs = readMs(env, 'OTEL_METRIC_EXPORT_INTERVAL') ?? 60_000;
  // The SDK refuses a timeout longer than the interval; a shorter interval implies one.
  settings.metrics.exportTimeoutMs = Math.min(
    readMs(env, 'OTEL_METRIC_EXPORT_TIMEOUT') ?? 30_000,
    settings.metrics.exportIntervalMs,
  );
  settings.propagators = readPropagators(env);
  settings.sdkLogLevel = readOne(env, 'OTEL_LOG_LEVEL', SDK_LOG_LEVELS) ?? 'warn';
  checkSampler(env);
  return settings;
}

function value(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

const HTTP_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:']);

/**
 * An endpoint the exporter can use. One it cannot parse it would replace with localhost:4318,
 * a place nobody configured, so it is refused here (in words that never repeat credentials).
 */
function readEndpoint(env: Env, name: string, disabled: boolean): string | undefined {
  const url = value(env, name);
  if (url === undefined || disabled) return url;
  const problem = serviceUrlProblem(url, HTTP_SCHEMES);
  if (problem !== undefined) {
    throw new ConfigError(`${name}: expected an http:// or https:// URL, found ${problem}`);
  }
  return url;
}

function list(env: Env, name: string): string[] | undefined {
  return value(env, name)
    ?.split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');
}

function expected(options: readonly string[]): string {
  const quoted = options.map((option) => `"${option}"`);
  return quoted.length === 1
    ? quoted[0]!
    : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

function invalid(name: string, options: readonly string[], found: string): ConfigError {
  return new ConfigError(`${name}: expected ${expected(options)}, found ${JSON.stringify(found)}`);
}

/** As the specification has it: only "true" (any case) is true; "false" and unset are false. */
function readBoolean(env: Env, name: string): boolean {
  const raw = value(env, name)?.toLowerCase();
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw invalid(name, ['true', 'false'], env[name]!);
}

function readOne<const T extends string>(
  env: Env,
  name: string,
  options: readonly T[],
): T | undefined {
  const raw = value(env, name);
  if (raw === undefined) return undefined;
  const found = options.find((option) => option === raw.toLowerCase());
  if (found === undefined) {
    const hint = raw.toLowerCase() === 'grpc' ? ' (Warren bundles no gRPC exporter)' : '';
    throw new ConfigError(`${invalid(name, options, raw).message}${hint}`);
  }
  return found;
}

function readExporters<const T extends string>(
  env: Env,
  name: string,
  options: readonly T[],
  whenUnset: T[],
): T[] {
  const names = list(env, name);
  if (names === undefined) return whenUnset;
  const chosen: T[] = [];
  for (const item of names) {
    if (item === 'none') continue;
    const found = options.find((option) => option === item);
    if (found === undefined) throw invalid(name, [...options, 'none'], item);
    if (!chosen.includes(found)) chosen.push(found);
  }
  // "none" alone turns the signal off; beside others it is meaningless, and ignored.
  return chosen;
}

function readPropagators(env: Env): PropagatorName[] {
  const names = list(env, 'OTEL_PROPAGATORS');
  if (names === undefined) return [...PROPAGATORS];
  const chosen: PropagatorName[] = [];
  for (const item of names) {
    if (item === 'none') continue;
    const found = PROPAGATORS.find((option) => option === item);
    if (found === undefined) throw invalid('OTEL_PROPAGATORS', [...PROPAGATORS, 'none'], item);
    if (!chosen.includes(found)) chosen.push(found);
  }
  return chosen;
}

function readMs(env: Env, name: string): number | undefined {
  const raw = value(env, name);
  if (raw === undefined) return undefined;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms <= 0) {
    throw new ConfigError(
      `${name}: expected a whole number of milliseconds above 0, found ${JSON.stringify(raw)}`,
    );
  }
  return ms;
}

/** The SDK builds the sampler from these variables itself; this only refuses what it would not. */
function checkSampler(env: Env): void {
  const sampler = env.OTEL_TRACES_SAMPLER;
  if (sampler === undefined || sampler.trim() === '') return; // the SDK's parentbased_always_on
  // Compared as written: the SDK reads the name as it stands, case and spaces included.
  if (!SAMPLERS.some((option) => option === sampler)) {
    throw invalid('OTEL_TRACES_SAMPLER', SAMPLERS, sampler);
  }
  if (sampler !== 'traceidratio' && sampler !== 'parentbased_traceidratio') return;
  const raw = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (raw === undefined) return; // the SDK's default ratio, 1
  const ratio = Number(raw);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new ConfigError(
      `OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, found ${JSON.stringify(raw)}`,
    );
  }
}
