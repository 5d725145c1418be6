import { randomUUID } from 'node:crypto';
import { type Transport, topologyFor } from '@warren/core';
import { MemoryBroker, MemoryTransport } from '@warren/memory';
import { type ConformanceFixture, describeTransportConformance } from '../src/index.ts';

/** A fresh broker per test: nothing one test declares can reach another. */
async function memoryFixture(): Promise<ConformanceFixture> {
  const broker = new MemoryBroker();
  const prefix = `test-${randomUUID()}`;
  const transports: Transport[] = [];
  const createTransport = (): Transport => {
    const transport = new MemoryTransport(broker);
    transports.push(transport);
    return transport;
  };
  const transport = createTransport();
  await transport.connect();
  const admin = broker.connect({ name: 'admin' });

  return {
    transport,
    createTransport,
    admin: {
      messageCount: async (queue) => broker.messageCount(queue),
      queueExists: async (queue) => broker.hasQueue(queue),
      deleteQueue: async (queue) => {
        broker.deleteQueue(queue);
      },
      declareQueue: async (queue, args) => {
        admin.declareQueue(queue, { durable: true, arguments: args });
      },
    },
    topology: (modelType, options = {}) => topologyFor(modelType, { ...options, prefix }),
    cleanUp: async () => {
      for (const each of transports) await each.close();
      admin.close();
    },
  };
}

describeTransportConformance('MemoryTransport', memoryFixture);
