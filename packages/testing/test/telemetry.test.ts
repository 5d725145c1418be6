import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { defineHandler, HEADERS, type InferenceClient } from '@warren/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHarness, type Harness } from '../src/index.ts';

const inference: InferenceClient = {
  featureExtraction: async ({ inputs }) => inputs.map(() => [1, 0]),
  textClassification: async ({ inputs }) => inputs.map(() => []),
};

/** The tenant each attempt read from its baggage. */
let seen: Array<string | undefined> = [];

/** Calls the model, then fails its first `failures` attempts. */
function flaky(failures: number) {
  return defineHandler({
    name: 'flaky',
    modelType: 'lab',
    input: z.object({ text: z.string() }),
    async handle({ text }, { inference: client, job }) {
      seen.push(propagation.getBaggage(context.active())?.getEntry('tenant')?.value);
      const [vector] = await client.featureExtraction({ model: 'tiny', inputs: [text] });
      if (job.attempt <= failures) throw new Error(`flaky on attempt ${job.attempt}`);
      return { vector };
    },
  });
}

describe('one trace through the embedded broker', () => {
  let spans: InMemorySpanExporter;
  let provider: BasicTracerProvider;
  let harness: Harness | undefined;

  beforeEach(() => {
    spans = new InMemorySpanExporter();
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(
      new CompositePropagator({
        propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
      }),
    );
    seen = [];
  });

  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  /** Publishes inside a caller's span whose context carries baggage `tenant=t1`. */
  async function publishTraced(input: unknown): Promise<{ messageId: string; traceId: string }> {
    const caller = trace.getTracer('test').startSpan('caller');
    const baggage = propagation.createBaggage({ tenant: { value: 't1' } });
    const ctx = propagation.setBaggage(trace.setSpan(ROOT_CONTEXT, caller), baggage);
    const messageId = await context.with(ctx, () => harness!.publish(input, { tenant: 't1' }));
    caller.end();
    return { messageId, traceId: caller.spanContext().traceId };
  }

  const named = (name: string) => spans.getFinishedSpans().filter((span) => span.name === name);

  it('keeps a job that retries twice in its producer trace, through the delay queues', async () => {
    harness = await createHarness({
      handler: flaky(2),
      inference,
      retry: { maxAttempts: 3, initialDelayMs: 1_000, jitter: 0 },
    });
    const { messageId, traceId } = await publishTraced({ text: 'hello' });
    await harness.advance(10_000);
    await harness.result(messageId);
    await harness.advance(0);

    const attempts = named('process warren.jobs.lab');
    expect(attempts.map((span) => span.attributes['warren.job.attempt'])).toEqual([1, 2, 3]);
    expect(attempts.map((span) => span.attributes['warren.outcome'])).toEqual([
      'retried',
      'retried',
      'succeeded',
    ]);
    const all = spans.getFinishedSpans().filter((span) => span.name !== 'caller');
    expect(new Set(all.map((span) => span.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(named('send warren.jobs')).toHaveLength(1);
    expect(named('handle flaky')).toHaveLength(3);
    expect(named('embeddings tiny')).toHaveLength(3);
    expect(named('send warren.delay.lab.1000ms')).toHaveLength(1);
    expect(named('send warren.delay.lab.2000ms')).toHaveLength(1);
    // The result goes to the harness's reply queue, which the broker named.
    expect(named('send')).toHaveLength(1);
    expect(seen).toEqual(['t1', 't1', 't1']);

    const [result] = harness.results;
    expect(String(result!.headers[HEADERS.traceparent])).toContain(traceId);
    expect(result!.headers[HEADERS.baggage]).toBe('tenant=t1');
  });

  it('carries the trace and the baggage on into the dead letter', async () => {
    harness = await createHarness({
      handler: flaky(5),
      inference,
      retry: { maxAttempts: 3, initialDelayMs: 1_000, jitter: 0 },
    });
    const { messageId, traceId } = await publishTraced({ text: 'hello' });
    await harness.advance(10_000);
    const deadLetter = await harness.deadLetter(messageId);
    // The dead letter is in its queue before the broker's confirm ends the span that sent it.
    await harness.advance(0);

    const [send] = named('send warren.dead-letter');
    expect(send!.spanContext().traceId).toBe(traceId);
    expect(deadLetter.headers[HEADERS.traceparent]).toBe(
      `00-${traceId}-${send!.spanContext().spanId}-01`,
    );
    expect(deadLetter.headers[HEADERS.baggage]).toBe('tenant=t1');
    expect(deadLetter.attempts).toBe(3);
    expect(named('process warren.jobs.lab')).toHaveLength(3);
    expect(seen).toEqual(['t1', 't1', 't1']);
  });
});
