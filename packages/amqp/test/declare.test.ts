import { jobRoutingKey } from '@warren/core';
import type { GetMessage } from 'amqplib';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrokerFixture, sleep } from './support.ts';

const broker = new BrokerFixture();
beforeEach(() => broker.start());
afterEach(() => broker.cleanUp());
afterAll(() => broker.stop());

describe('declare', () => {
  it('creates a quorum work queue whose nack without requeue lands in the dead-letter queue', async () => {
    const transport = await broker.transport();
    const topology = broker.topology('feature-extraction');
    await transport.declare(topology);
    await transport.declare(topology);

    // Re-declaring with the expected arguments passes only if the broker has exactly these.
    await expect(
      broker.admin.assertQueue(topology.queue, {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': topology.deadLetterExchange,
          'x-dead-letter-routing-key': topology.deadLetterRoutingKey,
          'x-delivery-limit': topology.deliveryLimit,
        },
      }),
    ).resolves.toMatchObject({ queue: topology.queue });

    const routingKey = jobRoutingKey('feature-extraction', 'public');
    await transport.publish({ exchange: topology.jobsExchange, routingKey }, Buffer.from('{}'), {
      messageId: 'job-1',
    });
    const subscription = await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      transport.nack(delivery, { requeue: false });
    });

    const dead = await getOne(topology.deadLetterQueue);
    await subscription.cancel();
    expect(dead.properties.messageId).toBe('job-1');
    expect(dead.content.toString()).toBe('{}');
    expect(dead.properties.headers?.['x-first-death-reason']).toBe('rejected');
    expect(dead.properties.headers?.['x-first-death-queue']).toBe(topology.queue);
  });

  it('removes the catch-all binding an earlier version gave the public queue', async () => {
    const transport = await broker.transport();
    const topology = broker.topology('feature-extraction');
    await transport.declare(topology);
    // As declared before queues were per scope: every scope reached the public queue.
    await broker.admin.bindQueue(topology.queue, topology.jobsExchange, 'feature-extraction.#');
    await transport.declare(topology);

    const publish = (routingKey: string) =>
      transport.publish(
        { exchange: topology.jobsExchange, routingKey },
        Buffer.from(routingKey),
        {},
      );
    await publish('feature-extraction.restricted');
    await publish('feature-extraction.public');
    const first = await getOne(topology.queue);
    expect(first.content.toString()).toBe('feature-extraction.public');
    expect((await broker.admin.checkQueue(topology.queue)).messageCount).toBe(0);
  });

  it('reports a queue that exists with other arguments as an error naming it, and keeps publishing', async () => {
    const transport = await broker.transport();
    const topology = broker.topology('text-classification');
    await broker.admin.assertQueue(topology.queue, {
      durable: true,
      arguments: { 'x-queue-type': 'classic' },
    });

    const declared = transport.declare(topology);
    await expect(declared).rejects.toThrow(`queue "${topology.queue}" already exists`);
    await expect(declared).rejects.toThrow(/x-queue-type/);

    const target = { exchange: topology.jobsExchange, routingKey: 'text-classification.public' };
    await expect(transport.publish(target, Buffer.from('{}'), {})).resolves.toBeUndefined();
  });
});

async function getOne(queue: string): Promise<GetMessage> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const message = await broker.admin.get(queue, { noAck: true });
    if (message !== false) return message;
    await sleep(20);
  }
  throw new Error(`no message arrived in queue ${queue} within 5 s`);
}
