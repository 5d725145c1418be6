import { context, propagation, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Consumer, type ConsumerOptions } from '../src/consumer.ts';
import { HEADERS } from '../src/envelope.ts';
import { defineHandler } from '../src/handler.ts';
import type { InferenceClient } from '../src/inference.ts';
import { JobPublisher } from '../src/publisher.ts';
import { topologyFor } from '../src/topology.ts';
import { FakeBroker, registerSdk, type Sdk, waitFor } from './telemetry-support.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN_ID = '00f067aa0ba902b7';
const CALLER = { traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-01`, baggage: 'tenant=t1' };

const inference: InferenceClient = {
  featureExtraction: async ({ inputs }) => inputs.map(() => [0.25, 0.5, 0.75]),
  textClassification: async ({ inputs }) => inputs.map(() => [{ label: 'ok', score: 1 }]),
};

/** What each handler call saw of the active context. */
let seenBaggage: Array<string | undefined>;

function embed(fail: 'never' | 'always' = 'never') {
  return defineHandler({
    name: 'embed',
    modelType: 'sentence-embedding',
    input: z.object({ text: z.string() }),
    async handle({ text }, { inference: client }) {
      seenBaggage.push(propagation.getBaggage(context.active())?.getEntry('tenant')?.value);
      const [vector] = await client.featureExtraction({ model: 'use-lite-en', inputs: [text] });
      if (fail === 'always') throw new Error('the model said no');
      return { vector };
    },
  });
}

function consumerOn(broker: FakeBroker, options: Partial<ConsumerOptions> = {}): Consumer {
  return new Consumer({
    handler: embed(),
    transport: broker,
    inference,
    logger: pino({ level: 'silent' }),
    retry: { maxAttempts: 3, initialDelayMs: 1, multiplier: 1, maxDelayMs: 1, jitter: 0 },
    ...options,
  });
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan) => span.spanContext().spanId;
const traceOf = (span: ReadableSpan) => span.spanContext().traceId;

describe('tracing a job', () => {
  let sdk: Sdk;
  let broker: FakeBroker;
  let consumer: Consumer | undefined;

  beforeEach(() => {
    sdk = registerSdk();
    broker = new FakeBroker();
    seenBaggage = [];
  });

  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
    await sdk.shutdown();
  });

  it('makes one trace of producer, consumer, handler, inference and result spans', async () => {
    consumer = consumerOn(broker);
    await consumer.start();
    const publisher = new JobPublisher(broker);
    await publisher.publish({
      modelType: 'sentence-embedding',
      tenant: 't1',
      input: { text: 'hello' },
      messageId: 'job-1',
      trace: CALLER,
    });
    await waitFor(() => broker.to('warren.results').length === 1);
    await waitFor(() => sdk.named('process warren.jobs.sentence-embedding').length === 1);

    const [producer] = sdk.named('send warren.jobs');
    const [process] = sdk.named('process warren.jobs.sentence-embedding');
    const [handle] = sdk.named('handle embed');
    const [embedding] = sdk.named('embeddings use-lite-en');
    const [result] = sdk.named('send warren.results');
    for (const span of [producer, process, handle, embedding, result]) {
      expect(span).toBeDefined();
      expect(traceOf(span!)).toBe(TRACE_ID);
    }
    expect(parentOf(producer!)).toBe(CALLER_SPAN_ID);
    expect(parentOf(process!)).toBe(idOf(producer!));
    expect(parentOf(handle!)).toBe(idOf(process!));
    expect(parentOf(embedding!)).toBe(idOf(handle!));
    expect(parentOf(result!)).toBe(idOf(process!));
    // The conventions ask a process span to link to the creation context even when it is the parent.
    expect(process!.links.map((link) => link.context.spanId)).toEqual([idOf(producer!)]);

    expect(producer!.kind).toBe(SpanKind.PRODUCER);
    expect(process!.kind).toBe(SpanKind.CONSUMER);
    expect(handle!.kind).toBe(SpanKind.INTERNAL);
    expect(embedding!.kind).toBe(SpanKind.CLIENT);
    expect(result!.kind).toBe(SpanKind.PRODUCER);

    expect(producer!.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'warren.jobs:sentence-embedding.public',
      'messaging.rabbitmq.destination.routing_key': 'sentence-embedding.public',
      'messaging.message.id': 'job-1',
    });
    expect(process!.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name':
        'warren.jobs:sentence-embedding.public:warren.jobs.sentence-embedding',
      'messaging.message.id': 'job-1',
      'warren.handler': 'embed',
      'warren.tenant': 't1',
      'warren.job.attempt': 1,
      'warren.outcome': 'succeeded',
    });
    expect(process!.status.code).toBe(SpanStatusCode.UNSET);
    // The admission decision, as the audit log would record it, is an event of the process span.
    const admitted = process!.events.find((event) => event.name === 'warren.job.admitted');
    expect(admitted?.attributes).toMatchObject({
      'warren.audit.decision': 'accepted',
      'warren.audit.tenant': 't1',
      'warren.audit.scope': 'public',
      'warren.audit.messageId': 'job-1',
    });
    expect(embedding!.attributes).toMatchObject({
      'gen_ai.operation.name': 'embeddings',
      'gen_ai.request.model': 'use-lite-en',
      'gen_ai.provider.name': 'huggingface',
      'gen_ai.embeddings.dimension.count': 3,
      'warren.inference.batch_size': 1,
    });
    expect(result!.attributes).toMatchObject({
      'messaging.destination.name': 'warren.results:sentence-embedding.t1',
      'messaging.message.conversation_id': 'job-1',
    });

    expect(seenBaggage).toEqual(['t1']);
    const headers = broker.to('warren.results')[0]!.properties.headers!;
    expect(headers[HEADERS.traceparent]).toBe(`00-${TRACE_ID}-${idOf(result!)}-01`);
    expect(headers[HEADERS.baggage]).toBe('tenant=t1');
  });

  it('keeps every attempt in the trace, and the dead letter carries it on', async () => {
    consumer = consumerOn(broker, { handler: embed('always') });
    await consumer.start();
    await new JobPublisher(broker).publish({
      modelType: 'sentence-embedding',
      tenant: 't1',
      input: { text: 'hello' },
      trace: CALLER,
    });
    await waitFor(() => broker.to('warren.dead-letter').length === 1);
    await waitFor(() => sdk.named('process warren.jobs.sentence-embedding').length === 3);

    const attempts = sdk.named('process warren.jobs.sentence-embedding');
    const retries = sdk.named('send warren.delay.sentence-embedding.1ms');
    const [deadLetter] = sdk.named('send warren.dead-letter');
    expect(attempts.map((span) => span.attributes['warren.job.attempt'])).toEqual([1, 2, 3]);
    expect(attempts.map((span) => span.attributes['warren.outcome'])).toEqual([
      'retried',
      'retried',
      'dead-lettered',
    ]);
    for (const span of [...attempts, ...retries, deadLetter!]) expect(traceOf(span)).toBe(TRACE_ID);
    // Each attempt follows from the retry the one before it published.
    expect(parentOf(retries[0]!)).toBe(idOf(attempts[0]!));
    expect(parentOf(attempts[1]!)).toBe(idOf(retries[0]!));
    expect(parentOf(attempts[2]!)).toBe(idOf(retries[1]!));
    expect(parentOf(deadLetter!)).toBe(idOf(attempts[2]!));
    for (const attempt of attempts) {
      expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
      expect(attempt.attributes).toMatchObject({
        'error.type': 'WARREN_HANDLER_FAILED',
        'warren.reason': 'handler-failed',
      });
    }
    const handles = sdk.named('handle embed');
    expect(handles).toHaveLength(3);
    expect(handles[0]!.events.map((event) => event.name)).toContain('exception');
    expect(seenBaggage).toEqual(['t1', 't1', 't1']);

    const headers = broker.to('warren.dead-letter')[0]!.properties.headers!;
    expect(headers[HEADERS.traceparent]).toBe(`00-${TRACE_ID}-${idOf(deadLetter!)}-01`);
    expect(headers[HEADERS.baggage]).toBe('tenant=t1');
    expect(headers[HEADERS.reason]).toBe('handler-failed');
  });

  it('links a batch span to the creation context of each of its deliveries', async () => {
    const batchHandler = defineHandler({
      name: 'embed-batch',
      modelType: 'sentence-embedding',
      input: z.object({ text: z.string() }),
      batch: { maxSize: 3, maxWaitMs: 1_000 },
      async handleBatch(inputs, { inference: client }) {
        seenBaggage.push(propagation.getBaggage(context.active())?.getEntry('tenant')?.value);
        const texts = inputs.map(({ text }) => text);
        return client.featureExtraction({ model: 'use-lite-en', inputs: texts });
      },
    });
    consumer = consumerOn(broker, { handler: batchHandler, prefetch: 3 });
    const publisher = new JobPublisher(broker);
    // Published before the consumer subscribes, so that all three arrive together.
    await broker.declare(topologyFor('sentence-embedding'));
    for (const text of ['a', 'b', 'c']) {
      await publisher.publish({
        modelType: 'sentence-embedding',
        tenant: 't1',
        input: { text },
        messageId: `job-${text}`,
        trace: CALLER,
      });
    }
    await consumer.start();
    await waitFor(() => broker.to('warren.results').length === 3);
    await waitFor(() => sdk.named('process warren.jobs.sentence-embedding').length === 1);

    const producers = sdk.named('send warren.jobs');
    const [batch] = sdk.named('process warren.jobs.sentence-embedding');
    expect(batch!.attributes['messaging.batch.message_count']).toBe(3);
    expect(batch!.parentSpanContext).toBeUndefined();
    expect(batch!.links.map((link) => link.context.spanId)).toEqual(producers.map(idOf));
    expect(batch!.links.map((link) => link.attributes?.['messaging.message.id'])).toEqual([
      'job-a',
      'job-b',
      'job-c',
    ]);
    const [handle] = sdk.named('handle embed-batch');
    expect(parentOf(handle!)).toBe(idOf(batch!));
    expect(handle!.attributes['messaging.batch.message_count']).toBe(3);
    // Every delivery carried the same baggage, so the batch kept it.
    expect(seenBaggage).toEqual(['t1']);

    // Each result stays in its own job's trace, linked to the batch.
    const results = sdk.named('send warren.results');
    expect(results.map(parentOf)).toEqual(producers.map(idOf));
    for (const result of results) {
      expect(traceOf(result)).toBe(TRACE_ID);
      expect(result.links.map((link) => link.context.spanId)).toEqual([idOf(batch!)]);
    }
  });

  it('ends the span of a message it cannot decode, marked with the failure', async () => {
    consumer = consumerOn(broker);
    await consumer.start();
    broker.inject(Buffer.from('{}'), { messageId: 'no-headers' });
    await waitFor(() => broker.to('warren.dead-letter').length === 1);
    await waitFor(() => sdk.named('process warren.jobs.sentence-embedding').length === 1);

    const [process] = sdk.named('process warren.jobs.sentence-embedding');
    expect(process!.parentSpanContext).toBeUndefined();
    expect(process!.status.code).toBe(SpanStatusCode.ERROR);
    expect(process!.attributes).toMatchObject({
      'error.type': 'WARREN_MALFORMED_MESSAGE',
      'warren.reason': 'invalid-envelope',
      'warren.outcome': 'dead-lettered',
      'messaging.destination.name': 'warren.jobs.sentence-embedding',
    });
    expect(sdk.named('handle embed')).toHaveLength(0);
    // The dead letter starts the trace the consumer's span began.
    const [deadLetter] = sdk.named('send warren.dead-letter');
    expect(parentOf(deadLetter!)).toBe(idOf(process!));
  });

  it('ends the spans of a running job when the broker cancels the consumer', async () => {
    let release!: () => void;
    const started = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = defineHandler({
      name: 'slow',
      modelType: 'sentence-embedding',
      input: z.object({ text: z.string() }),
      async handle(_input, { signal }) {
        release();
        await new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      },
    });
    consumer = consumerOn(broker, { handler: slow });
    await consumer.start();
    await new JobPublisher(broker).publish({
      modelType: 'sentence-embedding',
      tenant: 't1',
      input: { text: 'hello' },
      trace: CALLER,
    });
    await started;
    broker.cancelConsumer('queue deleted');
    const exit = await consumer.exited;
    consumer = undefined;
    expect(exit.state).toBe('failed');
    expect(String(exit.error)).toContain('queue deleted');
    await waitFor(() => sdk.named('process warren.jobs.sentence-embedding').length === 1);

    const [process] = sdk.named('process warren.jobs.sentence-embedding');
    const [handle] = sdk.named('handle slow');
    expect(process!.attributes['warren.outcome']).toBe('requeued');
    expect(handle!.attributes['error.type']).toBe('interrupted');
    expect(traceOf(process!)).toBe(TRACE_ID);
  });

  it('records a publish the broker refuses on the producer span', async () => {
    const refusing = new FakeBroker();
    refusing.publish = async () => {
      throw new Error('channel closed');
    };
    await expect(
      new JobPublisher(refusing).publish({
        modelType: 'sentence-embedding',
        tenant: 't1',
        input: {},
      }),
    ).rejects.toThrow('channel closed');
    const [producer] = sdk.named('send warren.jobs');
    expect(producer!.ended).toBe(true);
    expect(producer!.status.code).toBe(SpanStatusCode.ERROR);
    expect(producer!.attributes['error.type']).toBe('_OTHER');
    expect(producer!.events.map((event) => event.name)).toEqual(['exception']);
  });
});
