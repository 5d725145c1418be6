import { IllegalStateError, PublishError } from '@warren/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrokerFixture, RecordingLogger } from './support.ts';

const broker = new BrokerFixture();
beforeEach(() => broker.start());
afterEach(() => broker.cleanUp());
afterAll(() => broker.stop());

describe('publish', () => {
  it('rejects with a PublishError naming the cause when the exchange is missing, and the next publish succeeds', async () => {
    const transport = await broker.transport();
    const topology = broker.topology();
    await transport.declare(topology);
    const missing = `${topology.jobsExchange}.missing`;

    const failed = transport.publish({ exchange: missing, routingKey: 'x' }, Buffer.from('{}'), {});
    await expect(failed).rejects.toThrow(PublishError);
    await expect(failed).rejects.toThrow(/NOT_FOUND - no exchange/);
    await expect(failed).rejects.toThrow(`exchange "${missing}"`);

    const good = { exchange: topology.jobsExchange, routingKey: 'feature-extraction.public' };
    await expect(transport.publish(good, Buffer.from('{}'), {})).resolves.toBeUndefined();
    await expect(broker.admin.checkQueue(topology.queue)).resolves.toMatchObject({
      messageCount: 1,
    });
  });

  it('waits for the channel to drain when its buffer is full, and every publish is confirmed', async () => {
    const logger = new RecordingLogger();
    const transport = await broker.transport({ logger });
    const topology = broker.topology();
    await transport.declare(topology);
    // No binding matches this key, so the broker confirms and drops: nothing is stored.
    const target = { exchange: topology.jobsExchange, routingKey: 'unbound.key' };
    const body = Buffer.from('{}');

    // amqplib buffers 1,024 frames per channel before publish() returns false.
    const publishes = Array.from({ length: 3_000 }, () => transport.publish(target, body, {}));
    await expect(Promise.all(publishes)).resolves.toHaveLength(3_000);
    expect(logger.messages('debug')).toContain('publish channel full, waiting for drain');
  });

  it('rejects before connect and after close with an IllegalStateError', async () => {
    const transport = broker.unconnected();
    const target = { exchange: '', routingKey: 'nowhere' };

    await expect(transport.publish(target, Buffer.alloc(0), {})).rejects.toThrow(IllegalStateError);
    await transport.connect();
    await transport.close();
    await expect(transport.publish(target, Buffer.alloc(0), {})).rejects.toThrow(/found it closed/);
  });
});
