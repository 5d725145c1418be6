import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { ConfigError, type ConnectionEvent, type Delivery } from '@warren/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AmqpTransport,
  type AmqpTransportOptions,
  type Credentials,
  type CredentialsProvider,
} from '../src/index.ts';
import { AMQP_URL, BrokerFixture, RecordingLogger, sleep, waitFor } from './support.ts';

// Each test logs in as a broker user of its own, made with rabbitmqctl and deleted after it, and
// changes that user's password while the transport publishes and consumes.

const run = promisify(execFile);
const broker = new BrokerFixture();
const users: string[] = [];

beforeEach(() => broker.start());
afterEach(async () => {
  await broker.cleanUp();
  for (const user of users.splice(0)) await rabbitmqctl(['delete_user', user]);
});
afterAll(() => broker.stop());

async function rabbitmqctl(args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', ['-q', ...args]);
  return stdout;
}

/** A new broker user with every permission on vhost `/`, deleted after the test. */
async function newUser(password: string): Promise<string> {
  const user = `warren-rotation-${randomUUID().slice(0, 8)}`;
  await rabbitmqctl(['add_user', user, password]);
  users.push(user);
  await rabbitmqctl(['set_permissions', '-p', '/', user, '.*', '.*', '.*']);
  return user;
}

/** How many connections the broker has open for `user`. */
async function connectionsOf(user: string): Promise<number> {
  const listing = await rabbitmqctl(['list_connections', 'user', '--no-table-headers']);
  return listing.split('\n').filter((line) => line.trim() === user).length;
}

/** Closes every connection of `user` from the broker's side. */
async function closeConnectionsOf(user: string): Promise<void> {
  await rabbitmqctl(['close_all_user_connections', user, 'closed by a Warren rotation test']);
}

/** AMQP_URL without its user and password: the provider gives those. */
function urlWithoutCredentials(): string {
  const url = new URL(AMQP_URL);
  url.username = '';
  url.password = '';
  return url.href;
}

/** A provider whose credentials the test changes, and whose `changed` the test can call. */
class TestProvider implements CredentialsProvider {
  current: Credentials;
  changed: (() => void) | undefined;

  constructor(current: Credentials) {
    this.current = current;
  }

  async read(): Promise<Credentials> {
    return this.current;
  }

  watch(changed: () => void): () => void {
    this.changed = changed;
    return () => {
      this.changed = undefined;
    };
  }
}

/** A connected transport logging in through `provider`, with its events and log kept. */
async function rotating(
  provider: CredentialsProvider,
  options: Partial<AmqpTransportOptions> = {},
) {
  const logger = new RecordingLogger();
  const transport = broker.unconnected({
    url: urlWithoutCredentials(),
    credentials: provider,
    logger,
    recovery: { initialDelayMs: 20, maxDelayMs: 200 },
    ...options,
  });
  const events: ConnectionEvent[] = [];
  transport.onConnectionEvent((event) => events.push(event));
  await transport.connect();
  const topology = broker.topology();
  await transport.declare(topology);
  const of = <T extends ConnectionEvent['type']>(type: T) =>
    events.filter((event): event is Extract<ConnectionEvent, { type: T }> => event.type === type);
  return { transport, logger, events, of, topology };
}

/**
 * Consumes `queue`, acking each delivery a few milliseconds later, as a job would: some are
 * always unsettled. Counts deliveries by message id.
 */
async function countingConsumer(transport: AmqpTransport, queue: string) {
  const seen = new Map<string, number>();
  const redelivered: string[] = [];
  await transport.consume(queue, { prefetch: 20 }, (delivery: Delivery) => {
    const id = String(delivery.properties.messageId);
    seen.set(id, (seen.get(id) ?? 0) + 1);
    if (delivery.redelivered) redelivered.push(id);
    setTimeout(() => transport.ack(delivery), 2 + Math.floor(Math.random() * 8));
  });
  return { seen, redelivered };
}

/** Publishes `count` messages in rounds of 20, each round awaiting its confirms. */
async function publishInRounds(transport: AmqpTransport, queue: string, count: number) {
  const ids: string[] = [];
  const batch = randomUUID().slice(0, 8);
  for (let start = 0; start < count; start += 20) {
    const size = Math.min(20, count - start);
    const round = Array.from({ length: size }, (_, n) => `${batch}-${start + n}`);
    ids.push(...round);
    await Promise.all(
      round.map((messageId) =>
        transport.publish({ exchange: '', routingKey: queue }, Buffer.from('{}'), { messageId }),
      ),
    );
    await sleep(5);
  }
  return ids;
}

describe('rotating the broker credentials', () => {
  it('moves publishing and consuming to a connection with the new password, each message consumed and acked once, and closes the old connection once drained', async () => {
    const user = await newUser('first-password');
    const provider = new TestProvider({ username: user, password: 'first-password' });
    const { transport, logger, of, topology } = await rotating(provider);
    const consumer = await countingConsumer(transport, topology.queue);
    expect(await connectionsOf(user)).toBe(1);

    const publishing = publishInRounds(transport, topology.queue, 600);
    await waitFor(() => consumer.seen.size >= 150, 10_000);
    await rabbitmqctl(['change_password', user, 'second-password']);
    provider.current = { username: user, password: 'second-password' };
    await transport.rotateCredentials();
    const ids = await publishing;
    await waitFor(() => consumer.seen.size === ids.length, 15_000);

    expect(of('rotated')).toEqual([{ type: 'rotated', username: user }]);
    expect(logger.messages('info')).toContain('broker credentials rotated');
    await waitFor(() => logger.messages('info').includes('previous broker connection closed'));
    expect(await connectionsOf(user)).toBe(1);
    // Every message handled once. Deliveries still on their way to the old channel when it
    // closes come again on the new one, redelivered (docs/credentials.md): at most one prefetch
    // window of them, and none handled twice.
    expect([...consumer.seen.keys()].sort()).toEqual([...ids].sort());
    expect([...consumer.seen].filter(([, count]) => count !== 1)).toEqual([]);
    expect(consumer.redelivered.length).toBeLessThanOrEqual(20);
    // Nothing left unacked: closing would return it to the queue.
    await sleep(50);
    await transport.close();
    expect((await broker.admin.checkQueue(topology.queue)).messageCount).toBe(0);
    expect(logger.messages('warn')).toEqual([]);
  }, 30_000);

  it('rotates when the provider says its credentials changed, and reconnects with the newest ones', async () => {
    const user = await newUser('first-password');
    const provider = new TestProvider({ username: user, password: 'first-password' });
    const { transport, of, topology } = await rotating(provider);
    const consumer = await countingConsumer(transport, topology.queue);

    await rabbitmqctl(['change_password', user, 'second-password']);
    provider.current = { username: user, password: 'second-password' };
    provider.changed?.();
    await waitFor(() => of('rotated').length === 1);

    // The password changes again, and the broker cuts the connection before any rotation:
    // the reconnect reads the provider afresh.
    await rabbitmqctl(['change_password', user, 'third-password']);
    provider.current = { username: user, password: 'third-password' };
    await closeConnectionsOf(user);
    await waitFor(() => of('recovered').length === 1, 10_000);
    const ids = await publishInRounds(transport, topology.queue, 40);
    await waitFor(() => consumer.seen.size === ids.length);
    expect(await connectionsOf(user)).toBe(1);
  }, 30_000);

  it('keeps the old connection working when the broker refuses the new credentials, and tries again', async () => {
    const user = await newUser('right-password');
    const provider = new TestProvider({ username: user, password: 'right-password' });
    const { transport, logger, of, topology } = await rotating(provider, {
      rotationRetry: { initialDelayMs: 200, maxDelayMs: 400, jitter: 0 },
    });
    const consumer = await countingConsumer(transport, topology.queue);

    provider.current = { username: user, password: 'wrong-password' };
    await expect(transport.rotateCredentials()).rejects.toThrow(/ACCESS.REFUSED/);
    const [failed] = of('rotation-failed');
    expect(failed).toMatchObject({ username: user, attempt: 1, retryInMs: 200 });
    expect(JSON.stringify(logger.entries)).not.toContain('wrong-password');

    // The old connection still publishes and consumes.
    const ids = await publishInRounds(transport, topology.queue, 40);
    await waitFor(() => consumer.seen.size === ids.length);
    expect(await connectionsOf(user)).toBe(1);

    // The retry after the backoff reads the provider again, and succeeds this time.
    provider.current = { username: user, password: 'right-password' };
    await waitFor(() => of('rotated').length === 1, 5_000);
    expect(of('rotation-failed').length).toBeGreaterThanOrEqual(1);
    await waitFor(() => logger.messages('info').includes('previous broker connection closed'));
    expect(await connectionsOf(user)).toBe(1);
    const more = await publishInRounds(transport, topology.queue, 20);
    await waitFor(() => consumer.seen.size === ids.length + more.length);
    expect(consumer.redelivered).toEqual([]);
  }, 30_000);

  it('reconnects with the credentials that last worked while the secret holds a wrong password', async () => {
    const user = await newUser('right-password');
    const provider = new TestProvider({ username: user, password: 'right-password' });
    const { transport, of, topology, logger } = await rotating(provider, {
      rotationRetry: { initialDelayMs: 60_000, maxDelayMs: 60_000, jitter: 0 },
    });
    const consumer = await countingConsumer(transport, topology.queue);

    // The secret is rewritten wrongly, and the broker cuts the connection before anyone fixes it.
    provider.current = { username: user, password: 'wrong-password' };
    await expect(transport.rotateCredentials()).rejects.toThrow(/ACCESS.REFUSED/);
    await closeConnectionsOf(user);
    await waitFor(() => of('recovered').length === 1, 10_000);

    const ids = await publishInRounds(transport, topology.queue, 40);
    await waitFor(() => consumer.seen.size === ids.length);
    expect(of('gave-up')).toEqual([]);
    expect(await connectionsOf(user)).toBe(1);
    expect(logger.messages('warn')).toContain(
      'broker refused the credentials read now; connected with the ones that last worked',
    );
    expect(JSON.stringify(logger.entries)).not.toContain('wrong-password');
  }, 30_000);

  it('is refused on a transport made without a credentials provider', async () => {
    const transport = await broker.transport();
    await expect(transport.rotateCredentials()).rejects.toThrow(/expected a transport made with/);
  });

  it('refuses a URL with a password beside a credentials provider', () => {
    const provider = new TestProvider({ username: 'u', password: 'p' });
    const url = 'amqp://someone:s3cret@127.0.0.1:5672';
    expect(() => new AmqpTransport({ url, credentials: provider })).toThrow(ConfigError);
    expect(() => new AmqpTransport({ url, credentials: provider })).not.toThrow(/s3cret/);
  });
});
