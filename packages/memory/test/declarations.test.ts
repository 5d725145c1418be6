import { topologyFor } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { BrokerRefusalError, MemoryBroker, MemoryTransport } from '../src/index.ts';

describe('declarations (refused as RabbitMQ 3.10.8 refuses them)', () => {
  it('refuses x-max-priority on a quorum queue and x-delivery-limit on a classic one', () => {
    const connection = new MemoryBroker().connect();

    expect(() =>
      connection.declareQueue('q1', {
        arguments: { 'x-queue-type': 'quorum', 'x-max-priority': 5 },
      }),
    ).toThrow(
      "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q1' in vhost '/' " +
        'of queue type rabbit_quorum_queue',
    );
    expect(() => connection.declareQueue('q2', { arguments: { 'x-delivery-limit': 1 } })).toThrow(
      "invalid arg 'x-delivery-limit' for queue 'q2' in vhost '/' of queue type rabbit_classic_queue",
    );
  });

  it("refuses a second declaration with other compared arguments, in the broker's words", () => {
    const connection = new MemoryBroker().connect();
    connection.declareQueue('q', {
      arguments: { 'x-queue-type': 'classic', 'x-message-ttl': 100 },
    });

    expect(() => connection.declareQueue('q', { arguments: { 'x-message-ttl': 200 } })).toThrow(
      "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received '200' but current is '100'",
    );
    expect(() => connection.declareQueue('q', {})).toThrow(
      "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received none but current is '100'",
    );
    expect(() =>
      connection.declareQueue('q', { durable: false, arguments: { 'x-message-ttl': 100 } }),
    ).toThrow("inequivalent arg 'durable'");
    // Arguments RabbitMQ does not compare, and a classic queue's type left out, are no change.
    expect(
      connection.declareQueue('q', { arguments: { 'x-message-ttl': 100, 'x-custom': 'yes' } }),
    ).toEqual({ queue: 'q', messageCount: 0, consumerCount: 0 });
  });

  it('refuses a quorum queue redeclared without its type, as RabbitMQ does', () => {
    const connection = new MemoryBroker().connect();
    connection.declareQueue('q', { arguments: { 'x-queue-type': 'quorum' } });

    const redeclare = () => connection.declareQueue('q', {});
    expect(redeclare).toThrow(BrokerRefusalError);
    expect(redeclare).toThrow("received none but current is 'quorum'");
  });

  it('refuses arguments RabbitMQ acts on and the embedded broker does not implement', () => {
    const connection = new MemoryBroker().connect();

    expect(() => connection.declareQueue('q', { arguments: { 'x-max-length': 10 } })).toThrow(
      'the embedded broker does not implement it',
    );
  });

  it('keeps an exclusive queue to its connection: others may publish to it but not consume', async () => {
    const broker = new MemoryBroker();
    const owner = broker.connect();
    const other = broker.connect();
    const { queue } = owner.declareQueue('', { exclusive: true, durable: false });

    expect(queue).toMatch(/^amq\.gen-[\w-]{22}$/);
    other.publish({ exchange: '', routingKey: queue }, Buffer.alloc(0), {});
    expect(broker.messageCount(queue)).toBe(1);
    expect(() => other.consume(queue, { prefetch: 1, onDelivery: () => {} })).toThrow(
      expect.objectContaining({ kind: 'RESOURCE_LOCKED', code: 405 }),
    );
    owner.close();
    expect(broker.hasQueue(queue)).toBe(false);
  });

  it('refuses names with the reserved amq. prefix and an exchange redeclared with another type', () => {
    const connection = new MemoryBroker().connect();
    connection.declareExchange('jobs', 'topic');

    expect(() => connection.declareQueue('amq.mine')).toThrow('ACCESS_REFUSED');
    expect(() => connection.declareExchange('amq.mine', 'direct')).toThrow('ACCESS_REFUSED');
    expect(() => connection.declareExchange('jobs', 'direct')).toThrow(
      "inequivalent arg 'type' for exchange 'jobs' in vhost '/': received 'direct' but current is 'topic'",
    );
    expect(() => connection.declareExchange('amq.topic', 'topic')).not.toThrow();
  });

  it('declares a topology as @warren/amqp does: work queue, dead letters and delay queues', async () => {
    const broker = new MemoryBroker();
    const transport = new MemoryTransport(broker);
    await transport.connect();
    const topology = topologyFor('feature-extraction', { prefix: 'test', deliveryLimit: 3 });
    await transport.declare(topology);
    const connection = broker.connect();

    // Re-declaring with exactly @warren/amqp's arguments passes only if the broker has these.
    expect(() =>
      connection.declareQueue(topology.queue, {
        arguments: {
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': topology.deadLetterExchange,
          'x-dead-letter-routing-key': topology.deadLetterRoutingKey,
          'x-delivery-limit': 3,
        },
      }),
    ).not.toThrow();
    for (const { name, delayMs } of topology.delayQueues) {
      expect(() =>
        connection.declareQueue(name, {
          arguments: {
            'x-queue-type': 'quorum',
            'x-message-ttl': delayMs,
            'x-dead-letter-exchange': '',
            'x-dead-letter-routing-key': topology.queue,
          },
        }),
      ).not.toThrow();
    }
    expect(broker.hasExchange(topology.resultsExchange)).toBe(true);
  });
});
