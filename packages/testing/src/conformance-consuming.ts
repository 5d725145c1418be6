import type { Delivery } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { type FixtureAccess, job, QUIET_MS, topologyOf } from './conformance-support.ts';
import { record } from './recording.ts';
import { sleep, waitFor } from './wait-for.ts';

/** Prefetch, turns between consumers, settling, cancelling and closing. */
export function describeConsuming(fixture: FixtureAccess): void {
  describe('consuming', () => {
    it('with prefetch 2 hands out only 2 of 5 waiting messages until one is acked', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      for (let n = 0; n < 5; n += 1) {
        await transport.publish({ exchange: '', routingKey: topology.queue }, job(n), {});
      }

      const consumer = await record(transport, topology.queue, { prefetch: 2 });
      await consumer.received(2);
      await sleep(QUIET_MS);
      expect(consumer.deliveries).toHaveLength(2);

      transport.ack(consumer.deliveries[0]!);
      await consumer.received(3);
      await sleep(QUIET_MS);
      expect(consumer.deliveries).toHaveLength(3);
      expect(consumer.deliveries.map((d) => d.body.toString())).toEqual([
        '{"n":0}',
        '{"n":1}',
        '{"n":2}',
      ]);
    });

    it('raises the limit of a running subscription with setPrefetch, without an ack', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      for (let n = 0; n < 5; n += 1) {
        await transport.publish({ exchange: '', routingKey: topology.queue }, job(n), {});
      }
      const consumer = await record(transport, topology.queue, { prefetch: 1 });
      await consumer.received(1);

      // RabbitMQ's per-consumer limit leaves room for a transport that re-subscribes to apply
      // it, so deliveries held from before may come on top; what matters is that more arrive.
      await consumer.subscription.setPrefetch(3);
      await consumer.received(3);
    });

    it('gives two consumers of one queue a message each when each may hold one', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const first = await record(transport, topology.queue, { prefetch: 1 });
      const second = await record(transport, topology.queue, { prefetch: 1 });

      for (let n = 0; n < 3; n += 1) {
        await transport.publish({ exchange: '', routingKey: topology.queue }, job(n), {});
      }
      await first.received(1);
      await second.received(1);
      await sleep(QUIET_MS);

      expect(first.deliveries).toHaveLength(1);
      expect(second.deliveries).toHaveLength(1);
    });

    it('ignores a second settle of the same delivery, and the subscription keeps delivering', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const target = { exchange: '', routingKey: topology.queue };
      await transport.publish(target, job(1), {});
      await transport.publish(target, job(2), {});

      const consumer = await record(transport, topology.queue, { prefetch: 1 });
      const [first] = await consumer.received(1);
      transport.ack(first!);
      expect(() => transport.ack(first!)).not.toThrow();
      expect(() => transport.nack(first!, { requeue: true })).not.toThrow();

      const [, second] = await consumer.received(2);
      transport.ack(second!);
      await transport.publish(target, job(3), {});
      const [, , third] = await consumer.received(3);
      transport.ack(third!);
      await sleep(QUIET_MS);
      expect(consumer.deliveries.map((d) => d.redelivered)).toEqual([false, false, false]);
      expect(await admin.messageCount(topology.queue)).toBe(0);
    });

    it('ignores a settle of a delivery the transport did not hand out', async () => {
      const { transport } = fixture();
      const stranger: Delivery = {
        body: Buffer.alloc(0),
        properties: {},
        exchange: '',
        routingKey: 'q',
        redelivered: false,
        deliveryTag: 1,
        queue: 'q',
      };

      expect(() => transport.ack(stranger)).not.toThrow();
      expect(() => transport.nack(stranger, { requeue: false })).not.toThrow();
    });

    it('stops new deliveries on cancel, and the one in flight can still be acked', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      for (let n = 0; n < 2; n += 1) {
        await transport.publish({ exchange: '', routingKey: topology.queue }, job(n), {});
      }

      const consumer = await record(transport, topology.queue, { prefetch: 1 });
      const [first] = await consumer.received(1);
      await consumer.subscription.cancel();
      await consumer.subscription.cancel();
      transport.ack(first!);

      await sleep(QUIET_MS);
      expect(consumer.deliveries).toHaveLength(1);
      expect(await admin.messageCount(topology.queue)).toBe(1);
    });

    it('calls onCancel with a reason naming the queue when the queue is deleted', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const consumer = await record(transport, topology.queue, { prefetch: 1 });

      await admin.deleteQueue(topology.queue);
      await waitFor(() => consumer.cancelReasons.length > 0);

      expect(consumer.cancelReasons).toEqual([
        expect.stringContaining(`queue "${topology.queue}"`),
      ]);
      const target = { exchange: topology.jobsExchange, routingKey: 'feature-extraction.public' };
      await expect(transport.publish(target, job(1), {})).resolves.toBeUndefined();
    });

    it('returns unacked deliveries to the queue when the transport closes, redelivered after', async () => {
      const { admin } = fixture();
      const first = fixture().createTransport();
      await first.connect();
      const topology = topologyOf(fixture());
      await first.declare(topology);
      for (const messageId of ['job-1', 'job-2']) {
        await first.publish({ exchange: '', routingKey: topology.queue }, job(1), { messageId });
      }
      const held = await record(first, topology.queue, { prefetch: 2 });
      await held.received(2);

      await first.close();
      expect(() => first.ack(held.deliveries[0]!)).not.toThrow();
      expect(() => first.nack(held.deliveries[1]!, { requeue: false })).not.toThrow();
      await waitFor(async () => (await admin.messageCount(topology.queue)) === 2);

      const second = fixture().createTransport();
      await second.connect();
      const again = await record(second, topology.queue, {
        prefetch: 2,
        onDelivery: (delivery) => second.ack(delivery),
      });
      const redelivered = await again.received(2);
      expect(redelivered.map((d) => [d.properties.messageId, d.redelivered])).toEqual([
        ['job-1', true],
        ['job-2', true],
      ]);
    });
  });
}
