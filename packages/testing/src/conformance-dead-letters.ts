import { describe, expect, it } from 'vitest';
import { DELAY_MS, type FixtureAccess, job, QUIET_MS, topologyOf } from './conformance-support.ts';
import { record, takeAll } from './recording.ts';
import { sleep } from './wait-for.ts';

/** Requeueing, dead-lettering, delays, expiry, priority and the delivery limit. */
export function describeDeadLetters(fixture: FixtureAccess): void {
  describe('requeue and dead letters', () => {
    it('redelivers a message nacked with requeue, marked redelivered', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      await transport.publish({ exchange: '', routingKey: topology.queue }, job(1), {
        messageId: 'job-1',
      });

      const consumer = await record(transport, topology.queue, {
        prefetch: 1,
        onDelivery: (delivery, index) => {
          if (index === 0) transport.nack(delivery, { requeue: true });
          else transport.ack(delivery);
        },
      });
      const [first, second] = await consumer.received(2);

      expect(first).toMatchObject({ redelivered: false, properties: { messageId: 'job-1' } });
      expect(second).toMatchObject({ redelivered: true, properties: { messageId: 'job-1' } });
    });

    it('dead-letters a message nacked without requeue, with x-first-death-reason rejected', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const routingKey = 'feature-extraction.public';
      await transport.publish({ exchange: topology.jobsExchange, routingKey }, job(1), {
        messageId: 'job-dead',
        expiration: '60000',
        headers: { 'x-warren-tenant': 'tenant-a' },
      });

      await record(transport, topology.queue, {
        prefetch: 1,
        onDelivery: (delivery) => transport.nack(delivery, { requeue: false }),
      });
      const [dead] = await takeAll(transport, topology.deadLetterQueue, 1);

      expect(dead).toMatchObject({
        exchange: topology.deadLetterExchange,
        routingKey: topology.deadLetterRoutingKey,
        redelivered: false,
        queue: topology.deadLetterQueue,
      });
      expect(dead?.body.toString()).toBe('{"n":1}');
      expect(dead?.properties).toEqual({
        messageId: 'job-dead',
        headers: {
          'x-warren-tenant': 'tenant-a',
          'x-first-death-reason': 'rejected',
          'x-first-death-queue': topology.queue,
          'x-first-death-exchange': topology.jobsExchange,
        },
      });
      expect(await admin.messageCount(topology.queue)).toBe(0);
    });

    it('returns a message from a delay queue to the work queue once the delay has passed', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const [delayQueue] = topology.delayQueues;
      expect(delayQueue?.delayMs).toBe(DELAY_MS);
      const consumer = await record(transport, topology.queue, {
        prefetch: 1,
        onDelivery: (delivery) => transport.ack(delivery),
      });

      const sentAt = Date.now();
      await transport.publish({ exchange: '', routingKey: delayQueue!.name }, job(1), {
        messageId: 'job-retry',
        headers: { 'x-warren-attempt': 2 },
      });
      await sleep(DELAY_MS / 2);
      expect(consumer.deliveries).toHaveLength(0);
      const [back] = await consumer.received(1);

      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(DELAY_MS - 10);
      expect(back).toMatchObject({
        exchange: '',
        routingKey: topology.queue,
        redelivered: false,
        properties: {
          messageId: 'job-retry',
          headers: {
            'x-warren-attempt': 2,
            'x-first-death-reason': 'expired',
            'x-first-death-queue': delayQueue!.name,
            'x-first-death-exchange': '',
          },
        },
      });
    });

    it('expires a message with its own expiration only at the head, and dead-letters it as expired', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const target = { exchange: '', routingKey: topology.queue };
      await transport.publish(target, job(1), { messageId: 'long-lived' });
      await transport.publish(target, job(2), { messageId: 'short-lived', expiration: '50' });

      await sleep(QUIET_MS);
      expect(await admin.messageCount(topology.queue)).toBe(2);
      expect(await admin.messageCount(topology.deadLetterQueue)).toBe(0);

      const consumer = await record(transport, topology.queue, { prefetch: 1 });
      const [head] = await consumer.received(1);
      transport.ack(head!);
      const [dead] = await takeAll(transport, topology.deadLetterQueue, 1);
      await sleep(QUIET_MS);

      expect(consumer.deliveries.map((d) => d.properties.messageId)).toEqual(['long-lived']);
      expect(dead?.properties).toEqual({
        messageId: 'short-lived',
        headers: {
          'x-first-death-reason': 'expired',
          'x-first-death-queue': topology.queue,
          'x-first-death-exchange': '',
        },
      });
    });

    it('hands out a classic priority queue highest first, in order within a priority, capped at the maximum', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture(), 'feature-extraction', {
        queueType: 'classic',
        maxPriority: 3,
      });
      await transport.declare(topology);
      const priorities = [undefined, 1, 3, 9, 2, 0, 3, 5];
      for (const [n, priority] of priorities.entries()) {
        const properties = priority === undefined ? {} : { priority };
        await transport.publish({ exchange: '', routingKey: topology.queue }, job(n), properties);
      }

      const deliveries = await takeAll(transport, topology.queue, priorities.length);

      const order = deliveries.map((d) => (JSON.parse(d.body.toString()) as { n: number }).n);
      expect(order).toEqual([2, 3, 6, 7, 4, 1, 0, 5]);
    });

    it('dead-letters a quorum message that comes back more often than its delivery limit', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture(), 'feature-extraction', { deliveryLimit: 2 });
      await transport.declare(topology);
      await transport.publish({ exchange: '', routingKey: topology.queue }, job(1), {
        messageId: 'poison',
      });

      const consumer = await record(transport, topology.queue, {
        prefetch: 1,
        onDelivery: (delivery) => transport.nack(delivery, { requeue: true }),
      });
      const [dead] = await takeAll(transport, topology.deadLetterQueue, 1);
      await sleep(QUIET_MS);

      expect(consumer.deliveries.map((d) => d.redelivered)).toEqual([false, true, true]);
      expect(consumer.deliveries.map((d) => d.properties.headers?.['x-delivery-count'])).toEqual([
        undefined,
        1,
        2,
      ]);
      expect(dead?.properties).toEqual({
        messageId: 'poison',
        headers: {
          'x-first-death-reason': 'delivery_limit',
          'x-first-death-queue': topology.queue,
          'x-first-death-exchange': '',
        },
      });
    });
  });
}
