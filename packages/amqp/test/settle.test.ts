import type { Delivery } from '@warren/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrokerFixture, RecordingLogger, waitFor } from './support.ts';

const broker = new BrokerFixture();
beforeEach(() => broker.start());
afterEach(() => broker.cleanUp());
afterAll(() => broker.stop());

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
});
