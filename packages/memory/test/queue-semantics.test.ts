import { describe, expect, it } from 'vitest';
import { MemoryBroker, MemoryTransport } from '../src/index.ts';
import { ids, record, sleep, turns } from './support.ts';

async function brokerWithQueue(queueType: 'classic' | 'quorum', messages: string[]) {
  const broker = new MemoryBroker();
  const transport = new MemoryTransport(broker);
  await transport.connect();
  const connection = broker.connect();
  connection.declareQueue('q', { arguments: { 'x-queue-type': queueType } });
  for (const messageId of messages) {
    connection.publish({ exchange: '', routingKey: 'q' }, Buffer.from(messageId), { messageId });
  }
  return { broker, transport, connection };
}

describe('requeue order (as RabbitMQ 3.10.8 does it)', () => {
  it('puts a requeued message back at its place in a classic queue', async () => {
    const { transport } = await brokerWithQueue('classic', ['r0', 'r1', 'r2', 'r3']);
    const consumer = await record(transport, 'q', {
      prefetch: 1,
      onDelivery: (delivery, index) => {
        if (index < 2) transport.nack(delivery, { requeue: true });
        else transport.ack(delivery);
      },
    });

    const deliveries = await consumer.received(6);

    expect(ids(deliveries)).toEqual(['r0', 'r0', 'r0', 'r1', 'r2', 'r3']);
    expect(deliveries.map((d) => d.redelivered)).toEqual([false, true, true, false, false, false]);
    expect(deliveries.some((d) => d.properties.headers?.['x-delivery-count'] !== undefined)).toBe(
      false,
    );
  });

  it('puts a requeued message at the tail of a quorum queue, counting it in x-delivery-count', async () => {
    const { transport } = await brokerWithQueue('quorum', ['r0', 'r1', 'r2', 'r3']);
    const consumer = await record(transport, 'q', {
      prefetch: 1,
      onDelivery: (delivery, index) => {
        if (index < 2) transport.nack(delivery, { requeue: true });
        else transport.ack(delivery);
      },
    });

    const deliveries = await consumer.received(6);

    expect(ids(deliveries)).toEqual(['r0', 'r1', 'r2', 'r3', 'r0', 'r1']);
    const counts = deliveries.map((d) => d.properties.headers?.['x-delivery-count']);
    expect(counts).toEqual([undefined, undefined, undefined, undefined, 1, 1]);
  });

  it("returns a closed transport's deliveries to their places, counted on a quorum queue", async () => {
    const { broker, transport } = await brokerWithQueue('quorum', ['t0', 't1', 't2', 't3']);
    await (await record(transport, 'q', { prefetch: 2 })).received(2);

    await transport.close();
    const second = new MemoryTransport(broker);
    await second.connect();
    const again = await record(second, 'q', { prefetch: 4 });
    const deliveries = await again.received(4);

    expect(ids(deliveries)).toEqual(['t0', 't1', 't2', 't3']);
    expect(deliveries.map((d) => d.properties.headers?.['x-delivery-count'])).toEqual([
      1,
      1,
      undefined,
      undefined,
    ]);
  });
});

describe('consumers', () => {
  it('lowers the prefetch of a running subscription: nothing new until fewer are held', async () => {
    const { transport } = await brokerWithQueue('classic', ['m0', 'm1', 'm2', 'm3', 'm4']);
    const consumer = await record(transport, 'q', { prefetch: 3 });
    const held = await consumer.received(3);

    await consumer.subscription.setPrefetch(1);
    transport.ack(held[0]!);
    transport.ack(held[1]!);
    await sleep(50);
    expect(consumer.deliveries).toHaveLength(3);
    transport.ack(held[2]!);
    await consumer.received(4);
    await sleep(50);

    expect(ids(consumer.deliveries)).toEqual(['m0', 'm1', 'm2', 'm3']);
  });

  it('takes turns between the consumers of one queue', async () => {
    const { transport } = await brokerWithQueue('classic', []);
    const first = await record(transport, 'q', { prefetch: 10 });
    const second = await record(transport, 'q', { prefetch: 10 });

    for (const messageId of ['m0', 'm1', 'm2', 'm3']) {
      await transport.publish({ exchange: '', routingKey: 'q' }, Buffer.alloc(0), { messageId });
    }
    await first.received(2);
    await second.received(2);

    expect(ids(first.deliveries)).toEqual(['m0', 'm2']);
    expect(ids(second.deliveries)).toEqual(['m1', 'm3']);
  });

  it('never calls a listener inside publish or ack, only on a later turn', async () => {
    const { broker, connection } = await brokerWithQueue('classic', []);
    const seen: number[] = [];
    const consumer = connection.consume('q', {
      prefetch: 1,
      onDelivery: (delivery) => seen.push(delivery.deliveryTag),
    });

    connection.publish({ exchange: '', routingKey: 'q' }, Buffer.alloc(0), {});
    connection.publish({ exchange: '', routingKey: 'q' }, Buffer.alloc(0), {});
    expect(seen).toEqual([]);
    await turns();
    expect(seen).toEqual([1]);
    consumer.ack(1);
    expect(seen).toEqual([1]);
    await turns();

    expect(seen).toEqual([1, 2]);
    expect(consumer.ack(1)).toBe(false);
    expect(broker.messageCount('q')).toBe(0);
  });

  it('cancels the consumers of a deleted queue on a later turn, and drops settles for it', async () => {
    const { broker, transport } = await brokerWithQueue('classic', ['m0']);
    const consumer = await record(transport, 'q', { prefetch: 1 });
    const [held] = await consumer.received(1);

    expect(broker.deleteQueue('q')).toBe(0);
    expect(consumer.cancelReasons).toEqual([]);
    await turns();

    expect(consumer.cancelReasons).toEqual([
      'the broker cancelled the consumer of queue "q" (queue deleted)',
    ]);
    expect(() => transport.nack(held!, { requeue: true })).not.toThrow();
    expect(broker.hasQueue('q')).toBe(false);
  });
});

describe('the admin view', () => {
  it('counts, purges and deletes, and says which queue is missing', async () => {
    const { broker, transport, connection } = await brokerWithQueue('classic', ['m0', 'm1']);
    connection.declareExchange('jobs', 'topic');
    connection.bindQueue('q', 'jobs', 'a.#');
    await record(transport, 'q', { prefetch: 1 });
    await turns();

    expect(broker.messageCount('q')).toBe(1);
    expect(broker.consumerCount('q')).toBe(1);
    expect(broker.purge('q')).toBe(1);
    broker.deleteExchange('jobs');
    expect(broker.hasExchange('jobs')).toBe(false);
    await expect(
      transport.publish({ exchange: 'jobs', routingKey: 'a.b' }, Buffer.alloc(0), {}),
    ).rejects.toThrow("NOT_FOUND - no exchange 'jobs' in vhost '/'");
    expect(() => broker.messageCount('nope')).toThrow("NOT_FOUND - no queue 'nope' in vhost '/'");
  });
});
