import type { Delivery, QueueTopology } from '@warren/core';
import type { Channel } from 'amqplib';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AmqpTransport } from '../src/index.ts';
import { BrokerFixture, RecordingLogger, sleep, waitFor } from './support.ts';

const broker = new BrokerFixture();
beforeEach(() => broker.start());
afterEach(async () => {
  vi.restoreAllMocks();
  await broker.cleanUp();
});
afterAll(() => broker.stop());

/** A transport consuming a fresh queue that holds `count` messages, `{"n":0}` onwards. */
async function consuming(count: number, prefetch: number) {
  const transport = await broker.transport();
  const topology = broker.topology();
  await transport.declare(topology);
  await publishNumbered(transport, topology, 0, count);
  const deliveries: Delivery[] = [];
  const subscription = await transport.consume(topology.queue, { prefetch }, (delivery) => {
    deliveries.push(delivery);
  });
  return { transport, topology, deliveries, subscription };
}

async function publishNumbered(
  transport: AmqpTransport,
  topology: QueueTopology,
  from: number,
  count: number,
): Promise<void> {
  const target = { exchange: '', routingKey: topology.queue };
  for (let n = from; n < from + count; n += 1) {
    await transport.publish(target, Buffer.from(JSON.stringify({ n })), {});
  }
}

/**
 * Spies on `ack` and `nack` of every amqplib channel (they share one prototype), letting them
 * through to the broker; `frames()` lists what they sent, in order.
 */
function spyOnSettles() {
  const prototype: Channel = Object.getPrototypeOf(broker.admin);
  const acks = vi.spyOn(prototype, 'ack');
  const nacks = vi.spyOn(prototype, 'nack');
  const frames = () => {
    const sent = [
      ...acks.mock.calls.map(([message, multiple], index) => ({
        order: acks.mock.invocationCallOrder[index]!,
        frame: `ack ${message.fields.deliveryTag}${multiple ? ' and all before' : ''}`,
      })),
      ...nacks.mock.calls.map(([message, _multiple, requeue], index) => ({
        order: nacks.mock.invocationCallOrder[index]!,
        frame: `nack ${message.fields.deliveryTag}${requeue === false ? '' : ' requeue'}`,
      })),
    ];
    return sent.sort((a, b) => a.order - b.order).map((entry) => entry.frame);
  };
  return { frames };
}

/** The `n` of each message left in `queue`, read with basic.get on a channel of its own. */
async function numbersLeftIn(queue: string): Promise<number[]> {
  const channel = await broker.channel();
  const numbers: number[] = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) return numbers.sort((a, b) => a - b);
    numbers.push((JSON.parse(message.content.toString()) as { n: number }).n);
  }
}

/** Lets the turn end, and with it the flush of the acks made in it. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('ack and nack', () => {
  it('ignore a second settle of the same delivery, so the channel and the transport keep working', async () => {
    const logger = new RecordingLogger();
    const transport = await broker.transport({ logger });
    const topology = broker.topology();
    await transport.declare(topology);
    const target = { exchange: '', routingKey: topology.queue };
    await transport.publish(target, Buffer.from('{"n":1}'), {});
    await transport.publish(target, Buffer.from('{"n":2}'), {});

    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      deliveries.push(delivery);
    });
    await waitFor(() => deliveries.length === 1);
    const first = deliveries[0]!;
    transport.ack(first);
    expect(() => transport.ack(first)).not.toThrow();
    expect(() => transport.nack(first, { requeue: true })).not.toThrow();

    // A double ack reaching the broker would close this channel: the second delivery proves not.
    await waitFor(() => deliveries.length === 2);
    transport.ack(deliveries[1]!);
    await transport.publish(target, Buffer.from('{"n":3}'), {});
    await waitFor(() => deliveries.length === 3);
    expect(logger.messages('debug')).toContain('settle ignored: delivery already settled');
    expect(logger.messages('warn')).toEqual([]);
  });

  it('drop a settle whose channel has closed, without throwing, and the broker redelivers', async () => {
    const logger = new RecordingLogger();
    const first = await broker.transport({ logger });
    const topology = broker.topology();
    await first.declare(topology);
    await first.publish({ exchange: '', routingKey: topology.queue }, Buffer.from('{}'), {
      messageId: 'job-1',
    });

    const received: Delivery[] = [];
    await first.consume(topology.queue, { prefetch: 1 }, (delivery) => received.push(delivery));
    await waitFor(() => received.length === 1);
    await first.close();
    expect(() => first.ack(received[0]!)).not.toThrow();
    expect(() => first.nack(received[0]!, { requeue: false })).not.toThrow();

    const second = await broker.transport();
    const redelivered: Delivery[] = [];
    await second.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      redelivered.push(delivery);
      second.ack(delivery);
    });
    await waitFor(() => redelivered.length === 1);
    expect(redelivered[0]).toMatchObject({
      redelivered: true,
      properties: { messageId: 'job-1' },
    });
    expect(logger.messages('debug')).toContain(
      'settle dropped: channel closed, the broker redelivers',
    );
  });

  it('ignore a delivery this transport did not hand out', async () => {
    const transport = await broker.transport();
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

  it("ignore another transport's delivery and a copy of one, and still settle the original", async () => {
    const { transport, topology, deliveries } = await consuming(1, 5);
    const other = await broker.transport();
    await waitFor(() => deliveries.length === 1);
    const delivery = deliveries[0]!;
    const { frames } = spyOnSettles();

    other.ack(delivery);
    transport.ack({ ...delivery });
    await nextTurn();
    expect(frames()).toEqual([]);

    transport.ack(delivery);
    await nextTurn();
    expect(frames()).toEqual([`ack ${delivery.deliveryTag}`]);
    await transport.close();
    expect(await numbersLeftIn(topology.queue)).toEqual([]);
  });
});

describe('acks made in one turn', () => {
  it('go to the broker as one multiple-ack, and none comes back when the channel closes', async () => {
    const { transport, topology, deliveries } = await consuming(100, 100);
    await waitFor(() => deliveries.length === 100);
    const { frames } = spyOnSettles();

    for (const delivery of deliveries) transport.ack(delivery);
    expect(frames()).toEqual([]);
    await nextTurn();

    expect(frames()).toEqual([`ack ${deliveries.at(-1)!.deliveryTag} and all before`]);
    await transport.close();
    const fresh = await broker.channel();
    await expect(fresh.checkQueue(topology.queue)).resolves.toMatchObject({
      messageCount: 0,
      consumerCount: 0,
    });
    expect(await numbersLeftIn(topology.queue)).toEqual([]);
  });

  it('are sent before the channel closes when the transport closes in the same turn', async () => {
    const { transport, topology, deliveries } = await consuming(20, 20);
    await waitFor(() => deliveries.length === 20);

    for (const delivery of deliveries) transport.ack(delivery);
    await transport.close();

    expect(await numbersLeftIn(topology.queue)).toEqual([]);
  });

  it('settle exactly what was settled, among nacks and deliveries left unsettled', async () => {
    const { transport, topology, deliveries } = await consuming(7, 10);
    await waitFor(() => deliveries.length === 7);
    const { frames } = spyOnSettles();
    // Messages arrive in the order they were published: `at(n)` carries `{"n":n}`.
    const at = (n: number) => deliveries[n]!;
    const tag = (n: number) => at(n).deliveryTag;

    transport.ack(at(0));
    transport.ack(at(1));
    transport.nack(at(2), { requeue: true });
    // at(3) is left unsettled.
    transport.nack(at(4), { requeue: false });
    transport.ack(at(5));
    transport.ack(at(6));
    transport.ack(at(0));
    await nextTurn();

    expect(frames()).toEqual([
      `ack ${tag(1)} and all before`,
      `nack ${tag(2)} requeue`,
      `nack ${tag(4)}`,
      `ack ${tag(5)}`,
      `ack ${tag(6)}`,
    ]);
    // The requeued third comes back to this consumer, and is left unsettled too.
    await waitFor(() => deliveries.length === 8);
    expect(JSON.parse(deliveries[7]!.body.toString())).toEqual({ n: 2 });
    await transport.close();

    expect(await numbersLeftIn(topology.queue)).toEqual([2, 3]);
    expect(await numbersLeftIn(topology.deadLetterQueue)).toEqual([4]);
  });

  it('cover the deliveries of an earlier consumer on the same channel after a prefetch change', async () => {
    const { transport, topology, deliveries, subscription } = await consuming(6, 2);
    await waitFor(() => deliveries.length === 2);
    await subscription.setPrefetch(4);
    await waitFor(() => deliveries.length === 6);
    const { frames } = spyOnSettles();

    for (const delivery of deliveries.slice().reverse()) transport.ack(delivery);
    await nextTurn();

    expect(frames()).toEqual([`ack ${deliveries.at(-1)!.deliveryTag} and all before`]);
    await publishNumbered(transport, topology, 6, 1);
    await waitFor(() => deliveries.length === 7);
    transport.ack(deliveries[6]!);
    await sleep(50);
    await transport.close();
    expect(await numbersLeftIn(topology.queue)).toEqual([]);
  });
});
