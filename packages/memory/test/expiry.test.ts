import { describe, expect, it } from 'vitest';
import { fakeTimeBroker, record, topologyWithDelay, turns } from './support.ts';

const body = Buffer.from('{}');

describe('expiry on a fake clock', () => {
  it('returns a message from a delay queue to the work queue exactly when the delay has passed', async () => {
    const { clock, transport } = await fakeTimeBroker();
    const topology = topologyWithDelay(1_000);
    await transport.declare(topology);
    const work = await record(transport, topology.queue, { prefetch: 1 });

    await transport.publish({ exchange: '', routingKey: topology.delayQueues[0]!.name }, body, {
      messageId: 'job-1',
    });
    clock.advance(999);
    await turns();
    expect(work.deliveries).toHaveLength(0);
    clock.advance(1);
    await turns();

    expect(work.deliveries).toHaveLength(1);
    expect(work.deliveries[0]?.properties.headers).toEqual({
      'x-first-death-reason': 'expired',
      'x-first-death-queue': topology.delayQueues[0]!.name,
      'x-first-death-exchange': '',
    });
  });

  it('takes the shorter of the queue TTL and the message expiration', async () => {
    const { clock, transport } = await fakeTimeBroker();
    const topology = topologyWithDelay(1_000);
    await transport.declare(topology);
    const work = await record(transport, topology.queue, { prefetch: 1 });

    const target = { exchange: '', routingKey: topology.delayQueues[0]!.name };
    await transport.publish(target, body, { expiration: '300' });
    clock.advance(300);
    await turns();

    expect(work.deliveries).toHaveLength(1);
  });

  it('expires a message only at the head, and records the death as RabbitMQ x-death does', async () => {
    const { clock, broker, transport } = await fakeTimeBroker();
    const topology = topologyWithDelay(1_000, { queueType: 'classic' });
    await transport.declare(topology);
    const target = { exchange: '', routingKey: topology.queue };
    await transport.publish(target, body, { messageId: 'long-lived' });
    await transport.publish(target, body, { messageId: 'short-lived', expiration: '100' });

    clock.advance(10_000);
    await turns();
    expect(broker.messageCount(topology.queue)).toBe(2);
    expect(broker.messageCount(topology.deadLetterQueue)).toBe(0);

    const work = await record(transport, topology.queue, { prefetch: 1 });
    transport.ack((await work.received(1))[0]!);
    const dead = await record(transport, topology.deadLetterQueue, { prefetch: 1 });
    const [letter] = await dead.received(1);

    expect(work.deliveries).toHaveLength(1);
    expect(letter?.properties.expiration).toBeUndefined();
    expect(transport.deathHistory(letter!)).toEqual([
      {
        queue: topology.queue,
        reason: 'expired',
        count: 1,
        exchange: '',
        routingKeys: [topology.queue],
        time: Math.floor(clock.now() / 1000),
        originalExpiration: '100',
      },
    ]);
  });

  it('keeps the expiry of a message that comes back: requeued after its TTL, it dead-letters', async () => {
    const { clock, broker, transport } = await fakeTimeBroker();
    const connection = broker.connect();
    connection.declareExchange('dead', 'fanout');
    connection.declareQueue('graveyard');
    connection.bindQueue('graveyard', 'dead', '');
    connection.declareQueue('short', {
      arguments: { 'x-message-ttl': 1_000, 'x-dead-letter-exchange': 'dead' },
    });
    connection.publish({ exchange: '', routingKey: 'short' }, body, { messageId: 'slow' });
    const work = await record(transport, 'short', { prefetch: 1 });
    const [held] = await work.received(1);

    clock.advance(1_500);
    transport.nack(held!, { requeue: true });
    await turns();

    expect(work.deliveries).toHaveLength(1);
    expect(broker.messageCount('graveyard')).toBe(1);
  });

  it('counts repeated deaths in one x-death entry per queue and reason, newest first', async () => {
    const { clock, broker, transport } = await fakeTimeBroker();
    const connection = broker.connect();
    connection.declareQueue('work', {
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'wait',
      },
    });
    connection.declareQueue('wait', {
      arguments: {
        'x-queue-type': 'quorum',
        'x-message-ttl': 100,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'work',
      },
    });
    const work = await record(transport, 'work', {
      prefetch: 1,
      onDelivery: (delivery, index) => {
        if (index < 2) transport.nack(delivery, { requeue: false });
        else transport.ack(delivery);
      },
    });

    await transport.publish({ exchange: '', routingKey: 'work' }, body, { expiration: '50000' });
    for (let round = 0; round < 2; round += 1) {
      await turns();
      clock.advance(100);
    }
    const [, , third] = await work.received(3);

    expect(third?.properties.headers?.['x-first-death-reason']).toBe('rejected');
    expect(third?.properties.expiration).toBeUndefined();
    const deaths = transport.deathHistory(third!);
    expect(deaths.map(({ queue, reason, count }) => [queue, reason, count])).toEqual([
      ['wait', 'expired', 2],
      ['work', 'rejected', 2],
    ]);
    expect(deaths[1]?.originalExpiration).toBe('50000');
  });

  it('drops a message that would expire round a loop without a rejection', async () => {
    const { clock, broker } = await fakeTimeBroker();
    const connection = broker.connect();
    for (const [name, next] of [
      ['ping', 'pong'],
      ['pong', 'ping'],
    ] as const) {
      connection.declareQueue(name, {
        arguments: {
          'x-message-ttl': 100,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': next,
        },
      });
    }

    connection.publish({ exchange: '', routingKey: 'ping' }, body, {});
    await turns();
    clock.advance(100);
    await turns();
    expect(broker.messageCount('pong')).toBe(1);
    clock.advance(100);
    await turns();

    expect(broker.messageCount('ping')).toBe(0);
    expect(broker.messageCount('pong')).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('leaves no timer behind when a queue with waiting messages is deleted', async () => {
    const { clock, broker, transport } = await fakeTimeBroker();
    const topology = topologyWithDelay(1_000);
    await transport.declare(topology);
    await transport.publish({ exchange: '', routingKey: topology.delayQueues[0]!.name }, body, {});
    await turns();
    expect(clock.pendingTimers).toBe(1);

    expect(broker.deleteQueue(topology.delayQueues[0]!.name)).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });
});
