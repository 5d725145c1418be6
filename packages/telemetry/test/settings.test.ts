import { ConfigError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { readTelemetrySettings } from '../src/index.ts';

describe('readTelemetrySettings', () => {
  it('exports nothing when no variable is set, and propagates W3C trace context and baggage', () => {
    expect(readTelemetrySettings({})).toEqual({
      disabled: false,
      traces: { exporters: [], protocol: 'http/protobuf', endpoint: undefined },
      metrics: {
        exporters: [],
        protocol: 'http/protobuf',
        endpoint: undefined,
        exportIntervalMs: 60_000,
        exportTimeoutMs: 30_000,
      },
      propagators: ['tracecontext', 'baggage'],
      sdkLogLevel: 'warn',
    });
  });

  it('exports both signals over OTLP/HTTP with protobuf once a base endpoint is set', () => {
    const settings = readTelemetrySettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    });
    expect(settings.traces).toEqual({
      exporters: ['otlp'],
      protocol: 'http/protobuf',
      endpoint: 'http://collector:4318',
    });
    expect(settings.metrics.exporters).toEqual(['otlp']);
  });

  it('turns on only the signal whose endpoint is set', () => {
    const settings = readTelemetrySettings({
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://collector:4318/v1/metrics',
    });
    expect(settings.traces.exporters).toEqual([]);
    expect(settings.metrics).toMatchObject({
      exporters: ['otlp'],
      endpoint: 'http://collector:4318/v1/metrics',
    });
  });

  it('exports over OTLP to the default endpoint when the exporter is named without one', () => {
    const settings = readTelemetrySettings({ OTEL_TRACES_EXPORTER: 'otlp' });
    expect(settings.traces).toMatchObject({ exporters: ['otlp'], endpoint: undefined });
    expect(settings.metrics.exporters).toEqual([]);
  });

  it('lets "none" turn a signal off beside an endpoint, and takes lists in any case', () => {
    const settings = readTelemetrySettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_METRICS_EXPORTER: ' Prometheus , otlp,console ',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      OTEL_METRIC_EXPORT_INTERVAL: '5000',
      OTEL_PROPAGATORS: 'tracecontext',
      OTEL_LOG_LEVEL: 'ERROR',
    });
    expect(settings.traces.exporters).toEqual([]);
    expect(settings.traces.protocol).toBe('http/json');
    expect(settings.metrics).toMatchObject({
      exporters: ['prometheus', 'otlp', 'console'],
      protocol: 'http/protobuf',
      exportIntervalMs: 5_000,
      // No longer than the interval, as the SDK requires.
      exportTimeoutMs: 5_000,
    });
    expect(settings.propagators).toEqual(['tracecontext']);
    expect(settings.sdkLogLevel).toBe('error');
  });

  it('reads nothing else when OTEL_SDK_DISABLED is true, so a stale setting cannot stop a worker', () => {
    const settings = readTelemetrySettings({
      OTEL_SDK_DISABLED: 'True',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_TRACES_EXPORTER: 'zipkin',
    });
    expect(settings.disabled).toBe(true);
    expect(settings.traces.exporters).toEqual([]);
    expect(settings.metrics.exporters).toEqual([]);
  });

  it.each([
    [
      'OTEL_TRACES_EXPORTER',
      'zipkin',
      'OTEL_TRACES_EXPORTER: expected "otlp", "console" or "none", found "zipkin"',
    ],
    [
      'OTEL_METRICS_EXPORTER',
      'otlp,statsd',
      'OTEL_METRICS_EXPORTER: expected "otlp", "console", "prometheus" or "none", found "statsd"',
    ],
    [
      'OTEL_EXPORTER_OTLP_PROTOCOL',
      'grpc',
      'OTEL_EXPORTER_OTLP_PROTOCOL: expected "http/protobuf" or "http/json", found "grpc" (Warren bundles no gRPC exporter)',
    ],
    [
      'OTEL_TRACES_SAMPLER',
      'AlwaysOn',
      'OTEL_TRACES_SAMPLER: expected "always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off" or "parentbased_traceidratio", found "AlwaysOn"',
    ],
    [
      'OTEL_PROPAGATORS',
      'b3',
      'OTEL_PROPAGATORS: expected "tracecontext", "baggage" or "none", found "b3"',
    ],
    ['OTEL_SDK_DISABLED', 'yes', 'OTEL_SDK_DISABLED: expected "true" or "false", found "yes"'],
    [
      'OTEL_METRIC_EXPORT_INTERVAL',
      '1.5s',
      'OTEL_METRIC_EXPORT_INTERVAL: expected a whole number of milliseconds above 0, found "1.5s"',
    ],
    [
      'OTEL_LOG_LEVEL',
      'loud',
      'OTEL_LOG_LEVEL: expected "none", "error", "warn", "info", "debug", "verbose" or "all", found "loud"',
    ],
  ])(
    'refuses %s=%s, naming the variable, what was expected and what was found',
    (name, value, message) => {
      const read = () => readTelemetrySettings({ [name]: value });
      expect(read).toThrow(ConfigError);
      expect(read).toThrow(message);
    },
  );

  it('refuses an endpoint that is not an http(s) URL, without repeating it', () => {
    expect(() => readTelemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector 4318' })).toThrow(
      'OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL, found text that is not a URL',
    );
    expect(() =>
      readTelemetrySettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'user:s3cret@collector:4318' }),
    ).toThrow(
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: expected an http:// or https:// URL, found the scheme "user:"',
    );
  });

  it('refuses a sampler ratio outside 0 to 1', () => {
    expect(() =>
      readTelemetrySettings({
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '10',
      }),
    ).toThrow('OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, found "10"');
    expect(() =>
      readTelemetrySettings({
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      }),
    ).not.toThrow();
  });
});
