import { context, trace } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startTelemetry, type Telemetry, traceLogFields } from '../src/index.ts';
import { OtlpReceiver } from './otlp-receiver.ts';
import { clearOtelEnv } from './support.ts';

describe('traceLogFields', () => {
  let telemetry: Telemetry | undefined;
  let receiver: OtlpReceiver | undefined;

  beforeEach(() => {
    clearOtelEnv(vi.stubEnv);
  });
  afterEach(async () => {
    await telemetry?.shutdown();
    await receiver?.close();
    vi.unstubAllEnvs();
  });

  it('gives the active span ids and flags inside a span, across awaits, and nothing outside', async () => {
    receiver = await OtlpReceiver.start();
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    telemetry = await startTelemetry();
    const tracer = trace.getTracer('log-test');

    expect(traceLogFields()).toEqual({});
    const inside = await tracer.startActiveSpan('job', async (span) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const fields = traceLogFields();
      span.end();
      return { fields, ids: span.spanContext() };
    });
    expect(inside.fields).toEqual({
      trace_id: inside.ids.traceId,
      span_id: inside.ids.spanId,
      trace_flags: '01',
    });
    expect(traceLogFields()).toEqual({});
  });

  it('gives the ids of an extracted, unsampled parent made active, as flags 00, in a fresh object each time', async () => {
    receiver = await OtlpReceiver.start();
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    telemetry = await startTelemetry();
    const remote = trace.wrapSpanContext({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 0,
      isRemote: true,
    });

    context.with(trace.setSpan(context.active(), remote), () => {
      const first = traceLogFields();
      expect(first).toEqual({
        trace_id: '0af7651916cd43dd8448eb211c80319c',
        span_id: 'b7ad6b7169203331',
        trace_flags: '00',
      });
      // pino merges a line's own fields into the object the mixin returns.
      Object.assign(first, { msg: 'a line' });
      expect(traceLogFields()).not.toHaveProperty('msg');
    });
  });

  it('gives nothing when tracing is off, inside a span or not', async () => {
    telemetry = await startTelemetry();
    expect(telemetry.tracing).toBe(false);
    trace.getTracer('log-test').startActiveSpan('job', (span) => {
      expect(traceLogFields()).toEqual({});
      span.end();
    });
  });
});
