import { randomUUID } from 'node:crypto';
import { type Transport, topologyFor } from '@warren/core';
import { type ConformanceFixture, describeTransportConformance } from '@warren/testing';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { afterAll } from 'vitest';
import { AmqpTransport, redactUrl } from '../src/index.ts';

/** The broker the tests run against; a test that finds none fails. */
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

let adminConnection: ChannelModel | undefined;
afterAll(() => adminConnection?.close());

/** One admin connection per file, opened by the first test, so that without a broker each fails. */
async function adminConnectionOnce(): Promise<ChannelModel> {
  if (adminConnection !== undefined) return adminConnection;
  try {
    adminConnection = await connect(AMQP_URL);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message || cause.name : String(cause);
    throw new Error(
      `these tests need RabbitMQ at ${redactUrl(AMQP_URL)} (set AMQP_URL): ${reason}`,
      { cause },
    );
  }
  return adminConnection;
}

/**
 * Runs `operation` on a channel of its own: the broker closes a channel whose operation it
 * refuses (a check of a missing queue does), and that must not break the next one.
 */
async function onChannel<T>(operation: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await (await adminConnectionOnce()).createChannel();
  channel.on('error', () => {});
  try {
    return await operation(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}

/** RabbitMQ's reply codes for a missing queue, and for one exclusive to another connection. */
const NOT_FOUND = 404;
const RESOURCE_LOCKED = 405;

/** A passive declare fails for a missing queue, and for another connection's exclusive one. */
function existsIfLocked(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (code === RESOURCE_LOCKED) return true;
  if (code === NOT_FOUND) return false;
  throw error;
}

async function amqpFixture(): Promise<ConformanceFixture> {
  await adminConnectionOnce();
  const prefix = `test-${randomUUID()}`;
  const transports: Transport[] = [];
  const queues = new Set<string>();
  const exchanges = new Set<string>();
  const createTransport = (): Transport => {
    const transport = new AmqpTransport({ url: AMQP_URL, connectionName: 'conformance' });
    transports.push(transport);
    return transport;
  };
  const transport = createTransport();
  await transport.connect();

  return {
    transport,
    createTransport,
    admin: {
      messageCount: (queue) => onChannel(async (c) => (await c.checkQueue(queue)).messageCount),
      queueExists: (queue) =>
        onChannel((c) => c.checkQueue(queue)).then(() => true, existsIfLocked),
      deleteQueue: (queue) => onChannel(async (c) => void (await c.deleteQueue(queue))),
      declareQueue: (queue, args) =>
        onChannel(
          async (c) => void (await c.assertQueue(queue, { durable: true, arguments: args })),
        ),
    },
    topology: (modelType, options = {}) => {
      const topology = topologyFor(modelType, { ...options, prefix });
      queues.add(topology.queue).add(topology.deadLetterQueue);
      for (const { name } of topology.delayQueues) queues.add(name);
      exchanges.add(topology.jobsExchange).add(topology.deadLetterExchange);
      exchanges.add(topology.resultsExchange);
      return topology;
    },
    cleanUp: async () => {
      for (const each of transports) await each.close();
      await onChannel(async (channel) => {
        for (const queue of queues) await channel.deleteQueue(queue);
        for (const exchange of exchanges) await channel.deleteExchange(exchange);
      });
    },
  };
}

describeTransportConformance('AmqpTransport', amqpFixture);
