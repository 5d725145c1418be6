import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { BrokerUnreachableError, type Delivery, IllegalStateError } from '@warren/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redactUrl } from '../src/index.ts';
import { AMQP_URL, BrokerFixture, RecordingLogger, waitFor } from './support.ts';

const broker = new BrokerFixture();
beforeEach(() => broker.start());
afterEach(() => broker.cleanUp());
afterAll(() => broker.stop());

describe('connect', () => {
  it('rejects with a BrokerUnreachableError naming the broker but not the password when nothing listens', async () => {
    const port = await freePort();
    const transport = broker.unconnected({ url: `amqp://warren:s3cret@127.0.0.1:${port}/jobs` });

    const connecting = transport.connect();
    await expect(connecting).rejects.toThrow(BrokerUnreachableError);
    await expect(connecting).rejects.toThrow(`cannot connect to amqp://127.0.0.1:${port}/jobs`);
    await expect(connecting).rejects.toThrow(/ECONNREFUSED/);
    await expect(connecting).rejects.not.toThrow(/s3cret/);
  });

  it('shares one attempt between concurrent callers and resolves at once when connected', async () => {
    const logger = new RecordingLogger();
    const transport = broker.unconnected({ logger, connectionName: 'warren-test' });

    await Promise.all([transport.connect(), transport.connect(), transport.connect()]);
    await transport.connect();
    const connected = logger.entries.filter((entry) => entry.message === 'broker connected');
    expect(connected).toHaveLength(1);
    expect(connected[0]?.fields).toEqual({
      broker: redactUrl(AMQP_URL),
      connectionName: 'warren-test',
    });
  });
});

describe('a lost connection', () => {
  it('is logged once at error level, cancels consumers, and fails later operations clearly', async () => {
    const proxy = await startProxy();
    const logger = new RecordingLogger();
    const transport = broker.unconnected({ url: proxy.url, logger });
    await transport.connect();
    const topology = broker.topology();
    await transport.declare(topology);
    await transport.publish({ exchange: '', routingKey: topology.queue }, Buffer.from('{}'), {});
    const reasons: string[] = [];
    const deliveries: Delivery[] = [];
    const onCancel = (reason: string) => reasons.push(reason);
    await transport.consume(topology.queue, { prefetch: 1, onCancel }, (d) => deliveries.push(d));
    await waitFor(() => deliveries.length === 1);

    proxy.cut();
    await waitFor(() => reasons.length === 1);

    expect(logger.messages('error')).toEqual(['broker connection lost']);
    expect(logger.entries.find((e) => e.level === 'error')?.fields).toMatchObject({
      broker: expect.stringMatching(/^amqp:\/\/127\.0\.0\.1:\d+$/),
      error: expect.any(String),
    });
    expect(reasons[0]).toContain(`queue "${topology.queue}" closed`);
    expect(() => transport.ack(deliveries[0]!)).not.toThrow();
    await expect(
      transport.publish({ exchange: '', routingKey: topology.queue }, Buffer.from('{}'), {}),
    ).rejects.toThrow(BrokerUnreachableError);
    await expect(transport.connect()).rejects.toThrow(/was lost/);
    await expect(transport.close()).resolves.toBeUndefined();
    await proxy.close();
  });
});

describe('close', () => {
  it('is idempotent, leaves subscriptions cancellable, and later operations fail with an IllegalStateError', async () => {
    const transport = await broker.transport();
    const topology = broker.topology();
    await transport.declare(topology);
    const subscription = await transport.consume(topology.queue, { prefetch: 1 }, () => {});

    await Promise.all([transport.close(), transport.close()]);
    await expect(subscription.cancel()).resolves.toBeUndefined();
    await expect(transport.close()).resolves.toBeUndefined();
    await expect(transport.connect()).rejects.toThrow(IllegalStateError);
    await expect(transport.declare(broker.topology())).rejects.toThrow(IllegalStateError);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A TCP relay to the broker whose connections the test can cut, as a network failure would. */
async function startProxy(): Promise<{ url: string; cut(): void; close(): Promise<void> }> {
  const upstream = new URL(AMQP_URL);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const relay = createConnection(Number(upstream.port || 5672), upstream.hostname);
    for (const socket of [client, relay]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(relay).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');

  const url = new URL(AMQP_URL);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return {
    url: url.href,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
