import { fileURLToPath } from 'node:url';
import { AmqpTransport } from '@warren/amqp';
import { Consumer, isHandler, JobPublisher, type TransitionEvent } from '@warren/core';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { AMQP_URL, BrokerProbe, uniquePrefix, waitFor } from './support.ts';

const echo = (await import(fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url)))).default;

describe('the consumer actor', () => {
  const prefix = uniquePrefix();
  const transports: AmqpTransport[] = [];
  let probe: BrokerProbe | undefined;

  afterAll(async () => {
    await Promise.all(transports.map((t) => t.close()));
    await probe?.deleteTopology(prefix, ['echo']);
    await probe?.close();
  });

  it('goes through the expected states for one job, and every change is observed', async () => {
    if (!isHandler(echo)) throw new Error('the echo fixture is not a handler');
    probe = await BrokerProbe.open();
    const transport = new AmqpTransport({ url: AMQP_URL });
    transports.push(transport);
    const consumer = new Consumer({
      handler: echo,
      transport,
      inference: {
        featureExtraction: () => Promise.reject(new Error('not used')),
        textClassification: () => Promise.reject(new Error('not used')),
      },
      logger: pino({ level: 'silent' }),
      topology: { prefix },
    });
    const transitions: TransitionEvent[] = [];
    consumer.onTransition((event) => transitions.push(event));

    await consumer.start();
    const reply = await probe.replyQueue();
    const { messageId } = await new JobPublisher(transport, { prefix }).publish({
      modelType: 'echo',
      tenant: 'acme',
      input: { text: 'one job' },
      replyTo: reply.queue,
    });
    await waitFor(() => reply.messages.length === 1, 'the result');
    await waitFor(
      () => transitions.some((t) => t.actor === 'job' && t.to === 'done'),
      'the job to finish',
    );
    await consumer.stop();

    const job = transitions.filter((t) => t.actor === 'job');
    expect(job.map((t) => [t.from, t.to])).toEqual([
      [undefined, 'decoding'],
      // Without a verifier, verifying passes every job on: the states are the same either way.
      ['decoding', 'verifying'],
      ['verifying', 'validating'],
      ['validating', 'handling'],
      ['handling', 'publishing'],
      ['publishing', 'settling'],
      ['settling', 'done'],
    ]);
    expect(new Set(job.map((t) => t.actorId)).size).toBe(1);
    expect(job.every((t) => t.messageIds?.[0] === messageId)).toBe(true);

    const lifecycle = transitions.filter((t) => t.actor === 'consumer').map((t) => t.to);
    expect(lifecycle).toEqual([
      'idle',
      'connecting',
      'consuming',
      'draining.cancelling',
      'draining.finishing',
      'stopped',
    ]);
    expect(consumer.counts).toMatchObject({
      received: 1,
      succeeded: 1,
      retried: 0,
      deadLettered: 0,
    });
  });
});
