import type { Delivery } from '@warren/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrokerFixture, RecordingLogger, sleep, waitFor } from './support.ts';

const broker = new BrokerFixture();
beforeEach(() => broker.start());
afterEach(() => broker.cleanUp());
afterAll(() => broker.stop());

function jobs(count: number): Buffer[] {
  return Array.from({ length: count }, (_, index) => Buffer.from(`{"n":${index}}`));
}

describe('consume', () => {
  it('with prefetch 2 delivers only 2 of 5 waiting messages until one is acked', async () => {
    const transport = await broker.transport();
    const topology = broker.topology();
    await transport.declare(topology);
    for (const body of jobs(5)) {
      await transport.publish({ exchange: '', routingKey: topology.queue }, body, {});
    }

    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 2 }, (delivery) => {
      deliveries.push(delivery);
    });
    await waitFor(() => deliveries.length === 2);
    await sleep(200);
    expect(deliveries).toHaveLength(2);

    transport.ack(deliveries[0]!);
    await waitFor(() => deliveries.length === 3);
    await sleep(100);
    expect(deliveries).toHaveLength(3);
  });

  it('rejects a prefetch below 1, or not an integer, with a RangeError saying expected and found', async () => {
    const transport = await broker.transport();
    const topology = broker.topology();
    await transport.declare(topology);

    const consume = (prefetch: number) => transport.consume(topology.queue, { prefetch }, () => {});
    await expect(consume(0)).rejects.toThrow(
      new RangeError('prefetch: expected an integer from 1 to 65535, found 0'),
    );
    await expect(consume(1.5)).rejects.toThrow(RangeError);
    await expect(consume(Number.NaN)).rejects.toThrow(/found NaN/);
  });

  it('calls onCancel with a reason when the queue is deleted under the consumer, even if it throws', async () => {
    const logger = new RecordingLogger();
    const transport = await broker.transport({ logger });
    const topology = broker.topology();
    await transport.declare(topology);

    const reasons: string[] = [];
    const onCancel = (reason: string) => {
      reasons.push(reason);
      throw new Error('listener bug');
    };
    await transport.consume(topology.queue, { prefetch: 1, onCancel }, () => {});
    await broker.admin.deleteQueue(topology.queue);
    await waitFor(() => reasons.length > 0);

    expect(reasons).toEqual([expect.stringContaining(`queue "${topology.queue}"`)]);
    expect(logger.messages('error')).toEqual(['cancel listener threw']);
    const target = { exchange: topology.jobsExchange, routingKey: 'feature-extraction.public' };
    await expect(transport.publish(target, Buffer.from('{}'), {})).resolves.toBeUndefined();
  });

  it('logs a delivery listener that throws, and the connection keeps delivering', async () => {
    const logger = new RecordingLogger();
    const transport = await broker.transport({ logger });
    const topology = broker.topology();
    await transport.declare(topology);
    for (const body of jobs(2)) {
      await transport.publish({ exchange: '', routingKey: topology.queue }, body, {});
    }

    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      deliveries.push(delivery);
      transport.ack(delivery);
      throw new Error('listener bug');
    });
    await waitFor(() => deliveries.length === 2);

    expect(logger.messages('error')).toEqual([
      'delivery listener threw',
      'delivery listener threw',
    ]);
  });

  it('stops new deliveries on cancel but still lets the in-flight one be acked', async () => {
    const transport = await broker.transport();
    const topology = broker.topology();
    await transport.declare(topology);
    for (const body of jobs(2)) {
      await transport.publish({ exchange: '', routingKey: topology.queue }, body, {});
    }

    const deliveries: Delivery[] = [];
    const subscription = await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      deliveries.push(delivery);
    });
    await waitFor(() => deliveries.length === 1);
    await subscription.cancel();
    await subscription.cancel();
    transport.ack(deliveries[0]!);

    await sleep(100);
    expect(deliveries).toHaveLength(1);
    await expect(broker.admin.checkQueue(topology.queue)).resolves.toMatchObject({
      messageCount: 1,
    });
  });

  it('rejects consuming a queue that does not exist with an error naming it, and keeps working', async () => {
    const transport = await broker.transport();
    const topology = broker.topology();

    await expect(transport.consume(topology.queue, { prefetch: 1 }, () => {})).rejects.toThrow(
      `consuming from queue "${topology.queue}" failed`,
    );
    await transport.declare(topology);
    await expect(
      transport.consume(topology.queue, { prefetch: 1 }, () => {}),
    ).resolves.toBeDefined();
  });
});
