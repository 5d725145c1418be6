import { createServer } from 'node:net';
import { BrokerUnreachableError, ConfigError, IllegalStateError } from '@warren/core';
import { FaultProxy } from '@warren/testing';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redactUrl } from '../src/index.ts';
import { AMQP_URL, BrokerFixture, brokerAddress, RecordingLogger, urlThrough } from './support.ts';

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

  it('gives up an attempt whose handshake hangs after connectTimeoutMs, and says so', async () => {
    const proxy = await FaultProxy.start(brokerAddress());
    proxy.stall();
    const transport = broker.unconnected({ url: urlThrough(proxy), connectTimeoutMs: 300 });

    const started = Date.now();
    await expect(transport.connect()).rejects.toThrow(/cannot connect to .*ETIMEDOUT/);
    expect(Date.now() - started).toBeLessThan(2_000);
    await proxy.close();
  });

  it('refuses recovery and buffer options out of range with a ConfigError naming the field', () => {
    const make = (options: object) => () => broker.unconnected(options);

    expect(make({ recovery: { multiplier: 0.5 } })).toThrow(
      new ConfigError('recovery.multiplier: expected a number of at least 1, found 0.5'),
    );
    expect(make({ recovery: { jitter: 2 } })).toThrow(/recovery\.jitter: expected a number from 0/);
    expect(make({ recovery: { initialDelayMs: 500, maxDelayMs: 100 } })).toThrow(
      /recovery\.maxDelayMs: expected a number of at least 500, found 100/,
    );
    expect(make({ recovery: { giveUpAfterMs: -1 } })).toThrow(/recovery\.giveUpAfterMs/);
    expect(make({ publishBuffer: { maxMessages: 0 } })).toThrow(/publishBuffer\.maxMessages/);
    expect(make({ connectTimeoutMs: 1.5 })).toThrow(/connectTimeoutMs: expected a whole number/);
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
