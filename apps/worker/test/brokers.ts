import { AmqpTransport } from '@warren/amqp';
import { type Delivery, type TopologyOptions, type Transport, topologyFor } from '@warren/core';
import { MemoryBroker, MemoryTransport } from '@warren/memory';
import { AMQP_URL, BrokerProbe } from './support.ts';

/**
 * The brokers the delivery tests run against: RabbitMQ, and the embedded broker. Both are
 * driven through Warren's `Transport`, so one test body checks both.
 */
export interface TestBroker {
  readonly name: string;
  /** A new transport, not yet connected; closed by {@link close}. */
  transport(): Transport;
  messageCount(queue: string): Promise<number>;
  deleteTopology(prefix: string, modelType: string, options?: TopologyOptions): Promise<void>;
  close(): Promise<void>;
}

export async function rabbitmq(): Promise<TestBroker> {
  const probe = await BrokerProbe.open();
  const transports: Transport[] = [];
  return {
    name: 'rabbitmq',
    transport() {
      const transport = new AmqpTransport({ url: AMQP_URL });
      transports.push(transport);
      return transport;
    },
    messageCount: async (queue) => (await probe.messageCount(queue)).messageCount,
    deleteTopology: (prefix, modelType, options = {}) =>
      probe.deleteTopology(prefix, [modelType], options),
    async close() {
      await Promise.all(transports.map((t) => t.close()));
      await probe.close();
    },
  };
}

export async function embedded(): Promise<TestBroker> {
  const broker = new MemoryBroker();
  const transports: Transport[] = [];
  return {
    name: 'embedded',
    transport() {
      const transport = new MemoryTransport(broker);
      transports.push(transport);
      return transport;
    },
    messageCount: async (queue) => broker.messageCount(queue),
    async deleteTopology(prefix, modelType, options = {}) {
      const topology = topologyFor(modelType, { ...options, prefix });
      const delayQueues = topology.delayQueues.map((queue) => queue.name);
      for (const queue of [topology.queue, topology.deadLetterQueue, ...delayQueues]) {
        broker.deleteQueue(queue);
      }
    },
    async close() {
      await Promise.all(transports.map((t) => t.close()));
    },
  };
}

/** Collects every message reaching `queue`, acking each. */
export async function collect(transport: Transport, queue: string): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  await transport.consume(queue, { prefetch: 100 }, (delivery) => {
    deliveries.push(delivery);
    transport.ack(delivery);
  });
  return deliveries;
}

/** A reply queue on `transport` and the results that arrive in it. */
export async function replies(
  transport: Transport,
): Promise<{ queue: string; results: Delivery[] }> {
  const queue = await transport.declareReplyQueue();
  return { queue, results: await collect(transport, queue) };
}

/** The dead-letter queue of a model type under a prefix. */
export function deadLetterQueue(prefix: string, modelType: string): string {
  return topologyFor(modelType, { prefix }).deadLetterQueue;
}

/** The same transport, except that its acks never reach the broker. */
export function withoutAcks(transport: Transport): Transport {
  return {
    connect: () => transport.connect(),
    declare: (topology) => transport.declare(topology),
    declareReplyQueue: () => transport.declareReplyQueue(),
    consume: (queue, options, onDelivery) => transport.consume(queue, options, onDelivery),
    publish: (target, body, properties, options) =>
      transport.publish(target, body, properties, options),
    ack: () => {},
    nack: (delivery, options) => transport.nack(delivery, options),
    close: () => transport.close(),
  };
}
