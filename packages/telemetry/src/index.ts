export type { TraceLogFields } from './log-fields.ts';
export { traceLogFields } from './log-fields.ts';
export type { PrometheusMetrics } from './prometheus.ts';
export { PROMETHEUS_CONTENT_TYPE } from './prometheus.ts';
export type {
  MetricExporterName,
  OtlpProtocol,
  PropagatorName,
  SdkLogLevel,
  TelemetrySettings,
  TraceExporterName,
} from './settings.ts';
export { readTelemetrySettings } from './settings.ts';
export type { Telemetry, TelemetryOptions } from './start-telemetry.ts';
export { startTelemetry } from './start-telemetry.ts';
