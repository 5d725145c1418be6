import {
  context,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api';
import { IllegalStateError } from '@warren/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startTelemetry, type Telemetry, traceLogFields } from '../src/index.ts';
import { OtlpReceiver } from './otlp-receiver.ts';
import { clearOtelEnv, recordingLogger, waitFor } from './support.ts';

const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** A parent span with one child, made through the API alone, as instrumented code would. */
function makeSpans(): { traceId: string; parentId: string } {
  const tracer = trace.getTracer('export-test');
  return tracer.startActiveSpan('test parent', (parent) => {
    tracer.startSpan('test child', { attributes: { 'test.step': 'one' } }).end();
    parent.end();
    const { traceId, spanId } = parent.spanContext();
    return { traceId, parentId: spanId };
  });
}

describe('export to an OTLP/HTTP receiver', () => {
  let receiver: OtlpReceiver;
  let telemetry: Telemetry | undefined;

  beforeEach(async () => {
    clearOtelEnv(vi.stubEnv);
    receiver = await OtlpReceiver.start();
    vi.stubEnv('OTEL_SERVICE_NAME', 'warren-test');
  });
  afterEach(async () => {
    await telemetry?.shutdown();
    telemetry = undefined;
    vi.unstubAllEnvs();
    await receiver.close();
  });

  it('sends spans made through the API as protobuf to /v1/traces under the base endpoint, with the service name', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    telemetry = await startTelemetry({ serviceName: 'warren-worker' });
    expect(telemetry.tracing).toBe(true);

    const { traceId, parentId } = makeSpans();
    await telemetry.forceFlush();

    const traces = receiver.requests.filter((request) => request.path === '/v1/traces');
    expect(traces.length).toBeGreaterThan(0);
    expect(traces[0]!.contentType).toBe('application/x-protobuf');
    const spans = receiver.spans();
    expect(spans.map((span) => span.name).sort()).toEqual(['test child', 'test parent']);
    for (const span of spans) {
      // OTEL_SERVICE_NAME overrides the service name the caller suggested.
      expect(span.service).toBe('warren-test');
      expect(span.traceId).toBe(traceId);
      expect(span.scope).toBe('export-test');
    }
    const child = spans.find((span) => span.name === 'test child')!;
    expect(child.parentSpanId).toBe(parentId);
    expect(child.attributes).toEqual({ 'test.step': 'one' });
  });

  it('sends OTLP/JSON when OTEL_EXPORTER_OTLP_PROTOCOL is http/json, and takes service.name from OTEL_RESOURCE_ATTRIBUTES or the caller', async () => {
    vi.stubEnv('OTEL_SERVICE_NAME', '');
    vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment.name=test,team=ml');
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', `${receiver.url}/`);
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json');
    telemetry = await startTelemetry({ serviceName: 'warren-worker' });

    makeSpans();
    await telemetry.forceFlush();

    const [request] = receiver.requests.filter((r) => r.path === '/v1/traces');
    expect(request?.contentType).toMatch(/^application\/json/);
    const body = JSON.parse(request!.body.toString('utf-8'));
    const resource = Object.fromEntries(
      body.resourceSpans[0].resource.attributes.map(
        (kv: { key: string; value: { stringValue?: string } }) => [kv.key, kv.value.stringValue],
      ),
    );
    expect(resource).toMatchObject({
      'service.name': 'warren-worker',
      'deployment.environment.name': 'test',
      team: 'ml',
    });
    expect(receiver.spans().map((span) => span.name)).toContain('test parent');
  });

  it('uses a per-signal endpoint as given, and exports metrics only where a metrics endpoint is set', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', `${receiver.url}/collector/spans`);
    telemetry = await startTelemetry();
    expect(telemetry.settings.metrics.exporters).toEqual([]);
    expect(telemetry.metering).toBe(false);

    makeSpans();
    metrics.getMeter('export-test').createCounter('test.jobs').add(1);
    await telemetry.forceFlush();

    expect(receiver.spans('/collector/spans')).toHaveLength(2);
    expect(receiver.requests.every((request) => request.path === '/collector/spans')).toBe(true);
  });

  it('exports metrics over OTLP with the resource, and a counter made through the API arrives with its value', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    vi.stubEnv('OTEL_TRACES_EXPORTER', 'none');
    telemetry = await startTelemetry();
    expect(telemetry.tracing).toBe(false);
    expect(telemetry.metering).toBe(true);

    const counter = metrics.getMeter('export-test').createCounter('test.jobs.done');
    counter.add(2, { outcome: 'ok' });
    counter.add(1, { outcome: 'ok' });
    await telemetry.forceFlush();

    const points = receiver.sumPoints().filter((point) => point.metric === 'test.jobs.done');
    expect(points.at(-1)).toEqual({
      service: 'warren-test',
      metric: 'test.jobs.done',
      value: 3,
      attributes: { outcome: 'ok' },
    });
    expect(receiver.requests.some((request) => request.path === '/v1/traces')).toBe(false);
  });

  it('flushes spans still buffered when it shuts down, and unregisters from the API', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    vi.stubEnv('OTEL_BSP_SCHEDULE_DELAY', '60000');
    telemetry = await startTelemetry();
    makeSpans();
    expect(receiver.requests).toHaveLength(0);

    await telemetry.shutdown();

    expect(receiver.spans()).toHaveLength(2);
    const after = trace.getTracer('export-test').startSpan('after shutdown');
    expect(after.isRecording()).toBe(false);
    after.end();
    // A second start is allowed once the first has shut down.
    telemetry = await startTelemetry();
  });

  it('refuses a second start while one runs, also one made while the first is loading the SDK', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    const first = startTelemetry();
    await expect(startTelemetry()).rejects.toThrow(IllegalStateError);
    await expect(startTelemetry()).rejects.toThrow('being started by an earlier call');
    telemetry = await first;
    expect(telemetry.tracing).toBe(true);
    await expect(startTelemetry()).rejects.toThrow('telemetry is already started');
  });

  it('honours OTEL_TRACES_SAMPLER: always_off records and sends nothing', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    vi.stubEnv('OTEL_TRACES_SAMPLER', 'always_off');
    telemetry = await startTelemetry();
    makeSpans();
    await telemetry.forceFlush();
    expect(receiver.spans()).toEqual([]);
  });

  it('registers W3C trace context and baggage propagators with tracing', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    telemetry = await startTelemetry();
    const tracer = trace.getTracer('export-test');
    const headers: Record<string, string> = {};
    const baggage = propagation.createBaggage({ tenant: { value: 't1' } });
    const span = tracer.startSpan('publish');
    const active = propagation.setBaggage(trace.setSpan(ROOT_CONTEXT, span), baggage);
    propagation.inject(active, headers, setter);
    span.end();

    const { traceId, spanId } = span.spanContext();
    expect(headers.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    expect(headers.baggage).toBe('tenant=t1');
    const extracted = propagation.extract(context.active(), headers);
    expect(trace.getSpanContext(extracted)?.traceId).toBe(traceId);
    expect(propagation.getBaggage(extracted)?.getEntry('tenant')?.value).toBe('t1');
  });

  it("logs a failed export through the given logger, without the credentials in the endpoint or a job's trace", async () => {
    const logger = recordingLogger();
    // The trace ids a log line would carry (the worker's logger adds them to every line).
    const tracedAt: object[] = [];
    const logError = logger.error;
    logger.error = (fields, msg) => {
      tracedAt.push(traceLogFields());
      logError(fields, msg);
    };
    const closed = await OtlpReceiver.start();
    await closed.close();
    // Nothing listens there any more.
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', closed.url.replace('//', '//user:s3cret@'));
    vi.stubEnv('OTEL_EXPORTER_OTLP_TIMEOUT', '500');
    vi.stubEnv('OTEL_BSP_SCHEDULE_DELAY', '20');
    telemetry = await startTelemetry({ logger });

    makeSpans();
    await waitFor(
      () => logger.lines.some((line) => line.msg === 'opentelemetry diagnostic'),
      'an export failure logged',
    );
    const failure = logger.lines.find((line) => line.msg === 'opentelemetry diagnostic')!;
    expect(failure.level).toBe('error');
    expect(failure.fields.detail).toMatch(/^connect ECONNREFUSED 127.0.0.1:\d+$/);
    expect(JSON.stringify(logger.lines)).not.toContain('s3cret');
    // The export ran on a timer set while a span was active: its failure is not that span's.
    expect(tracedAt).not.toHaveLength(0);
    for (const fields of tracedAt) expect(fields).toEqual({});
    expect(logger.lines[0]).toEqual({
      level: 'info',
      fields: {
        traces: ['otlp'],
        metrics: ['otlp'],
        tracesEndpoint: `${closed.url}/`,
        metricsEndpoint: `${closed.url}/`,
      },
      msg: 'telemetry started',
    });
  });
});

describe('with no exporter configured', () => {
  let telemetry: Telemetry | undefined;

  afterEach(async () => {
    await telemetry?.shutdown();
    telemetry = undefined;
    vi.unstubAllEnvs();
  });

  beforeEach(() => {
    clearOtelEnv(vi.stubEnv);
  });

  it('sends nothing, logs no error, registers nothing, and spans made through the API cost nothing and never throw', async () => {
    // Where an OTLP exporter would go by default, if one were wrongly made.
    const receiver = await OtlpReceiver.start(4318).catch(() => OtlpReceiver.start());
    const logger = recordingLogger();
    try {
      telemetry = await startTelemetry({ logger });
      expect(telemetry).toMatchObject({ tracing: false, metering: false, prometheus: undefined });

      const tracer = trace.getTracer('export-test');
      const span = tracer.startSpan('unseen');
      expect(span.isRecording()).toBe(false);
      expect(() => {
        makeSpans();
        span.recordException(new Error('boom'));
        span.end();
        metrics.getMeter('export-test').createCounter('test.unseen').add(1);
      }).not.toThrow();
      const headers: Record<string, string> = {};
      propagation.inject(trace.setSpan(ROOT_CONTEXT, span), headers, setter);
      expect(headers).toEqual({});

      await telemetry.forceFlush();
      await telemetry.shutdown();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(receiver.requests).toEqual([]);
      expect(logger.lines.filter((line) => line.level !== 'info')).toEqual([]);
      expect(logger.lines).toEqual([
        { level: 'info', fields: { reason: 'no exporter configured' }, msg: 'telemetry off' },
      ]);
    } finally {
      await receiver.close();
    }
  });

  it('sends nothing with OTEL_SDK_DISABLED=true even where an endpoint and exporters are set', async () => {
    const receiver = await OtlpReceiver.start();
    try {
      vi.stubEnv('OTEL_SDK_DISABLED', 'TRUE');
      vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
      vi.stubEnv('OTEL_TRACES_EXPORTER', 'otlp');
      vi.stubEnv('OTEL_METRICS_EXPORTER', 'otlp,prometheus');
      telemetry = await startTelemetry({ prometheus: true });
      expect(telemetry).toMatchObject({ tracing: false, metering: false, prometheus: undefined });

      makeSpans();
      metrics.getMeter('export-test').createCounter('test.unseen').add(1);
      await telemetry.shutdown();
      expect(receiver.requests).toEqual([]);
    } finally {
      await receiver.close();
    }
  });
});
