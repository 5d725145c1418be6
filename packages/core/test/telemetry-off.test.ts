import {
  type ContextManager,
  context,
  type Meter,
  metrics,
  ProxyTracer,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { Consumer } from '../src/consumer.ts';
import { HEADERS } from '../src/envelope.ts';
import { defineHandler } from '../src/handler.ts';
import type { InferenceClient } from '../src/inference.ts';
import { JobPublisher } from '../src/publisher.ts';
import { extractContext, injectContext } from '../src/trace-propagation.ts';
import { FakeBroker, unregisterSdk, waitFor } from './telemetry-support.ts';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const inference: InferenceClient = {
  featureExtraction: async ({ inputs }) => inputs.map(() => [1]),
  textClassification: async ({ inputs }) => inputs.map(() => []),
};

const handler = defineHandler({
  name: 'embed',
  modelType: 'sentence-embedding',
  input: z.object({ text: z.string() }),
  async handle({ text }, { inference: client }) {
    if (text === 'fail') throw new Error('no');
    return client.featureExtraction({ model: 'm', inputs: [text] });
  },
});

async function runJobs(texts: string[]) {
  const broker = new FakeBroker();
  const consumer = new Consumer({
    handler,
    transport: broker,
    inference,
    logger: pino({ level: 'silent' }),
    retry: { maxAttempts: 2, initialDelayMs: 1, multiplier: 1, maxDelayMs: 1, jitter: 0 },
  });
  await consumer.start();
  const publisher = new JobPublisher(broker);
  for (const text of texts) {
    await publisher.publish({
      modelType: 'sentence-embedding',
      tenant: 't1',
      input: { text },
      trace: { traceparent: TRACEPARENT, baggage: 'tenant=t1' },
    });
  }
  const ok = texts.filter((text) => text !== 'fail').length;
  const failed = texts.length - ok;
  await waitFor(() => consumer.counts.succeeded === ok && consumer.counts.deadLettered === failed);
  const exit = await consumer.stop();
  return { broker, exit };
}

/** A tracer provider whose spans throw from every method, or that cannot make one at all. */
function brokenTracerProvider(how: 'start' | 'span') {
  const fail = () => {
    throw new Error('broken SDK');
  };
  const span = new Proxy({} as Span, { get: () => fail });
  const tracer = {
    startSpan: how === 'start' ? fail : () => span,
    startActiveSpan: fail,
  } as unknown as Tracer;
  return { getTracer: () => tracer };
}

afterEach(() => {
  unregisterSdk();
  vi.restoreAllMocks();
});

describe('with no SDK registered', () => {
  it('runs jobs and passes their trace headers on unchanged, making no span', async () => {
    const getTracer = vi.spyOn(ProxyTracerProvider.prototype, 'getTracer');
    const startSpan = vi.spyOn(ProxyTracer.prototype, 'startSpan');

    const { broker, exit } = await runJobs(['hello', 'fail']);

    expect(exit.state).toBe('stopped');
    const [result] = broker.to('warren.results');
    const [deadLetter] = broker.to('warren.dead-letter');
    for (const { properties } of [result!, deadLetter!]) {
      expect(properties.headers![HEADERS.traceparent]).toBe(TRACEPARENT);
      expect(properties.headers![HEADERS.baggage]).toBe('tenant=t1');
    }
    expect(getTracer).not.toHaveBeenCalled();
    expect(startSpan).not.toHaveBeenCalled();
  });
});

describe('a failing SDK', () => {
  it('never fails a job when it cannot start spans', async () => {
    trace.setGlobalTracerProvider(brokenTracerProvider('start'));
    const { broker, exit } = await runJobs(['hello', 'fail']);
    expect(exit.state).toBe('stopped');
    expect(broker.to('warren.results')).toHaveLength(1);
    expect(broker.to('warren.dead-letter')).toHaveLength(1);
  });

  it('never fails a job when its spans throw', async () => {
    trace.setGlobalTracerProvider(brokenTracerProvider('span'));
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const { broker, exit } = await runJobs(['hello', 'fail']);
    expect(exit.state).toBe('stopped');
    expect(broker.to('warren.results')).toHaveLength(1);
    expect(broker.to('warren.dead-letter')).toHaveLength(1);
  });

  it('never fails a job when its context manager throws', async () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider());
    const broken: ContextManager = {
      active: () => ROOT_CONTEXT,
      with: () => {
        throw new Error('broken SDK');
      },
      bind: (_context, target) => target,
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    };
    context.setGlobalContextManager(broken);
    const { broker, exit } = await runJobs(['hello', 'fail']);
    expect(exit.state).toBe('stopped');
    expect(broker.to('warren.results')).toHaveLength(1);
    expect(broker.to('warren.dead-letter')).toHaveLength(1);
  });

  it('never fails a job when its meter throws', async () => {
    metrics.setGlobalMeterProvider({
      getMeter: (): Meter => {
        throw new Error('broken SDK');
      },
    });
    const { exit } = await runJobs(['hello', 'fail']);
    expect(exit.state).toBe('stopped');
  });
});

describe('trace headers', () => {
  it('drop a tracestate that belonged to the traceparent being replaced', () => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const incoming = { traceparent: TRACEPARENT, tracestate: 'vendor=1', 'x-warren-tenant': 't1' };
    const parent = extractContext(incoming);
    const other = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
    });
    const headers: Record<string, string> = { ...incoming };
    injectContext(other, headers);
    expect(headers).toEqual({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'x-warren-tenant': 't1',
    });
    expect(trace.getSpanContext(parent)?.traceState?.get('vendor')).toBe('1');
  });
});
