import type { LogSink } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { MemoryBroker, MemoryTransport } from '../src/index.ts';
import { record, turns, waitFor } from './support.ts';

interface Entry {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function recordingLogger(): { logger: LogSink; entries: Entry[] } {
  const entries: Entry[] = [];
  const keep =
    (level: string) =>
    (fields: object, message: string): void => {
      entries.push({ level, fields: { ...fields }, message });
    };
  const logger = {
    debug: keep('debug'),
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
  };
  return { logger, entries };
}

async function connected(options: { connectionName?: string } = {}) {
  const broker = new MemoryBroker();
  const { logger, entries } = recordingLogger();
  const transport = new MemoryTransport(broker, { ...options, logger });
  await transport.connect();
  broker.connect().declareQueue('q');
  return { broker, transport, entries };
}

describe('MemoryTransport', () => {
  it('connects once however often it is asked, naming the connection in its log fields', async () => {
    const { transport, entries } = await connected({ connectionName: 'worker-1' });

    await Promise.all([transport.connect(), transport.connect()]);

    const connects = entries.filter((e) => e.message === 'broker connected');
    expect(connects).toEqual([
      {
        level: 'info',
        fields: { broker: 'memory', connectionName: 'worker-1' },
        message: 'broker connected',
      },
    ]);
  });

  it('logs a delivery listener that throws, and keeps delivering', async () => {
    const { transport, entries } = await connected();
    const seen: number[] = [];
    await transport.consume('q', { prefetch: 1 }, (delivery) => {
      seen.push(delivery.deliveryTag);
      transport.ack(delivery);
      throw new Error('listener bug');
    });

    for (let n = 0; n < 2; n += 1) {
      await transport.publish({ exchange: '', routingKey: 'q' }, Buffer.alloc(0), {});
    }
    await waitFor(() => seen.length === 2);

    expect(seen).toEqual([1, 2]);
    const errors = entries.filter((e) => e.level === 'error');
    expect(errors.map((e) => e.message)).toEqual([
      'delivery listener threw',
      'delivery listener threw',
    ]);
    expect(errors[0]?.fields).toMatchObject({ queue: 'q', deliveryTag: 1, error: 'listener bug' });
  });

  it('logs a cancel listener that throws', async () => {
    const { broker, transport, entries } = await connected();
    await transport.consume(
      'q',
      {
        prefetch: 1,
        onCancel: () => {
          throw new Error('listener bug');
        },
      },
      () => {},
    );

    broker.deleteQueue('q');
    await turns();

    expect(entries.filter((e) => e.level !== 'debug' && e.level !== 'info')).toMatchObject([
      { level: 'warn', message: 'consumer cancelled by the broker' },
      { level: 'error', message: 'cancel listener threw' },
    ]);
  });

  it('notes a second settle and a settle after close at debug level, and settles nothing twice', async () => {
    const { broker, transport, entries } = await connected();
    await transport.publish({ exchange: '', routingKey: 'q' }, Buffer.alloc(0), {});
    const consumer = await record(transport, 'q', { prefetch: 1 });
    const [delivery] = await consumer.received(1);

    transport.nack(delivery!, { requeue: true });
    transport.ack(delivery!);
    const [, again] = await consumer.received(2);
    await transport.close();
    transport.ack(again!);

    const debug = entries.filter((e) => e.level === 'debug').map((e) => e.message);
    expect(debug).toContain('settle ignored: delivery already settled');
    expect(debug).toContain('settle dropped: channel closed, the broker redelivers');
    expect(broker.messageCount('q')).toBe(1);
  });

  it('gives the x-death history of a delivery it handed out, and none for a stranger', async () => {
    const { broker, transport } = await connected();
    const connection = broker.connect();
    connection.declareQueue('rejecting', {
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'q' },
    });
    await transport.publish({ exchange: '', routingKey: 'rejecting' }, Buffer.alloc(0), {});
    await record(transport, 'rejecting', {
      prefetch: 1,
      onDelivery: (delivery) => transport.nack(delivery, { requeue: false }),
    });
    const [dead] = await (await record(transport, 'q', { prefetch: 1 })).received(1);

    expect(transport.deathHistory(dead!)).toMatchObject([
      {
        queue: 'rejecting',
        reason: 'rejected',
        count: 1,
        exchange: '',
        routingKeys: ['rejecting'],
      },
    ]);
    expect(dead?.properties.headers).not.toHaveProperty('x-death');
    expect(transport.deathHistory({ ...dead! })).toEqual([]);
  });
});
