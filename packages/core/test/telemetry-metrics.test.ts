import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Consumer } from '../src/consumer.ts';
import { JobRejectedError } from '../src/errors.ts';
import { defineHandler } from '../src/handler.ts';
import type { InferenceClient } from '../src/inference.ts';
import { JobPublisher } from '../src/publisher.ts';
import type { SupervisorEvent } from '../src/supervisor.ts';
import { instrumentSupervisor, recordConnectionEvent } from '../src/telemetry-metrics.ts';
import { FakeBroker, registerSdk, type Sdk, waitFor } from './telemetry-support.ts';

const inference: InferenceClient = {
  featureExtraction: async ({ inputs }) => inputs.map(() => [1, 0]),
  textClassification: async () => {
    throw new Error('not this one');
  },
};

/** Succeeds, retries once then succeeds, or is refused, as its input says. */
const handler = defineHandler({
  name: 'embed',
  modelType: 'sentence-embedding',
  input: z.object({ text: z.string(), mode: z.enum(['ok', 'flaky', 'refuse']) }),
  async handle({ text, mode }, { inference: client, job }) {
    if (mode === 'flaky' && job.attempt === 1) throw new Error('try again');
    if (mode === 'refuse') throw new JobRejectedError('not for us');
    return client.featureExtraction({ model: 'use-lite-en', inputs: [text] });
  },
});

const base = { 'warren.handler': 'embed', 'warren.queue': 'warren.jobs.sentence-embedding' };

describe('metrics', () => {
  let sdk: Sdk;
  let broker: FakeBroker;
  let consumer: Consumer | undefined;

  beforeEach(() => {
    sdk = registerSdk();
    broker = new FakeBroker();
  });

  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
    await sdk.shutdown();
  });

  it('counts jobs by outcome and reason as they succeed, retry and dead-letter', async () => {
    consumer = new Consumer({
      handler,
      transport: broker,
      inference,
      logger: pino({ level: 'silent' }),
      prefetch: 8,
      retry: { maxAttempts: 3, initialDelayMs: 1, multiplier: 1, maxDelayMs: 1, jitter: 0 },
    });
    await consumer.start();
    const publisher = new JobPublisher(broker);
    for (const mode of ['ok', 'flaky', 'refuse', 'ok'] as const) {
      await publisher.publish({
        modelType: 'sentence-embedding',
        tenant: 't1',
        input: { text: 'x', mode },
      });
    }
    broker.inject(Buffer.from('not json'), {
      messageId: 'bad',
      contentType: 'application/json',
      headers: { 'x-warren-tenant': 't1', 'x-warren-model-type': 'sentence-embedding' },
    });
    await waitFor(() => consumer!.counts.succeeded === 3 && consumer!.counts.deadLettered === 2);

    const finished = await sdk.points('warren.jobs.finished');
    expect(finished).toEqual(
      expect.arrayContaining([
        { attributes: { ...base, 'warren.outcome': 'succeeded' }, value: 3 },
        {
          attributes: { ...base, 'warren.outcome': 'retried', 'warren.reason': 'handler-failed' },
          value: 1,
        },
        {
          attributes: {
            ...base,
            'warren.outcome': 'dead-lettered',
            'warren.reason': 'rejected-by-handler',
          },
          value: 1,
        },
        {
          attributes: { ...base, 'warren.outcome': 'dead-lettered', 'warren.reason': 'not-json' },
          value: 1,
        },
      ]),
    );
    expect(finished).toHaveLength(4);
    expect(await sdk.points('warren.jobs.received')).toEqual([{ attributes: base, value: 6 }]);
    expect(await sdk.points('warren.jobs.in_flight')).toEqual([{ attributes: base, value: 0 }]);
    expect(await sdk.points('warren.consumer.prefetch')).toEqual([{ attributes: base, value: 8 }]);

    const handled = await sdk.points('warren.handler.duration');
    const counts = Object.fromEntries(
      handled.map(({ attributes, value }) => [
        String(attributes['error.type'] ?? 'ok'),
        (value as { count: number }).count,
      ]),
    );
    expect(counts).toEqual({ ok: 3, WARREN_HANDLER_FAILED: 1, WARREN_JOB_REJECTED: 1 });

    const [inferred] = await sdk.points('gen_ai.client.operation.duration');
    expect(inferred!.attributes).toEqual({
      'gen_ai.operation.name': 'embeddings',
      'gen_ai.provider.name': 'huggingface',
      'gen_ai.request.model': 'use-lite-en',
    });
    expect((inferred!.value as { count: number }).count).toBe(3);
    const batches = await sdk.points('warren.batch.size');
    expect((batches[0]!.value as { count: number; sum: number }).count).toBe(6);
  });

  it('counts expired jobs apart from the outcome they took', async () => {
    consumer = new Consumer({
      handler,
      transport: broker,
      inference,
      logger: pino({ level: 'silent' }),
      deadlines: { onExpired: 'drop' },
    });
    await consumer.start();
    await new JobPublisher(broker).publish({
      modelType: 'sentence-embedding',
      tenant: 't1',
      input: { text: 'x', mode: 'ok' },
      deadline: Date.now() - 60_000,
    });
    await waitFor(() => consumer!.counts.dropped === 1);

    expect(await sdk.points('warren.jobs.expired')).toEqual([{ attributes: base, value: 1 }]);
    expect(await sdk.points('warren.jobs.finished')).toEqual([
      {
        attributes: { ...base, 'warren.outcome': 'dropped', 'warren.reason': 'expired' },
        value: 1,
      },
    ]);
  });

  it('counts supervisor crashes, restarts and escalations by actor', async () => {
    let listener!: (event: SupervisorEvent) => void;
    const stop = instrumentSupervisor({
      onEvent(added) {
        listener = added;
        return () => {};
      },
    });
    listener({ type: 'crashed', id: 'embed', error: new Error('x'), restartInMs: 10 });
    listener({ type: 'restarted', id: 'embed', restarts: 1 });
    listener({ type: 'crashed', id: 'embed', error: new Error('x'), restartInMs: 20 });
    listener({ type: 'escalated', id: undefined, error: new Error('gone') });
    stop();

    expect(await sdk.points('warren.actor.crashes')).toEqual([
      { attributes: { 'warren.actor': 'embed' }, value: 2 },
    ]);
    expect(await sdk.points('warren.actor.restarts')).toEqual([
      { attributes: { 'warren.actor': 'embed' }, value: 1 },
    ]);
    expect(await sdk.points('warren.supervisor.escalations')).toEqual([
      { attributes: {}, value: 1 },
    ]);
  });

  it('counts broker connection events by type', async () => {
    const cause = new Error('socket closed');
    recordConnectionEvent({ type: 'lost', cause });
    recordConnectionEvent({ type: 'recovering', attempt: 1, delayMs: 100, cause });
    recordConnectionEvent({ type: 'recovering', attempt: 2, delayMs: 200, cause });
    recordConnectionEvent({ type: 'recovered', attempts: 2, downtimeMs: 400 });

    const points = await sdk.points('warren.broker.connection.events');
    expect(points).toEqual(
      expect.arrayContaining([
        { attributes: { 'warren.connection.event': 'lost' }, value: 1 },
        { attributes: { 'warren.connection.event': 'recovering' }, value: 2 },
        { attributes: { 'warren.connection.event': 'recovered' }, value: 1 },
      ]),
    );
    expect(points).toHaveLength(3);
  });
});
