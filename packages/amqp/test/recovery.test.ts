import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import {
  BrokerUnreachableError,
  type ConnectionEvent,
  type Delivery,
  PublishBufferFullError,
  PublishError,
  type QueueTopology,
} from '@warren/core';
import { FaultProxy } from '@warren/testing';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AmqpTransport, AmqpTransportOptions } from '../src/index.ts';
import {
  BrokerFixture,
  brokerAddress,
  RecordingLogger,
  sleep,
  urlThrough,
  waitFor,
} from './support.ts';

const broker = new BrokerFixture();
const proxies: FaultProxy[] = [];
beforeEach(() => broker.start());
afterEach(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
  await broker.cleanUp();
});
afterAll(() => broker.stop());

/** Reconnects quickly, so that each test takes a second or two. */
const FAST = { initialDelayMs: 20, maxDelayMs: 200 };

/** A transport connected through a fresh proxy, with its log and connection events kept. */
async function throughProxy(options: Partial<AmqpTransportOptions> = {}) {
  const proxy = await FaultProxy.start(brokerAddress());
  proxies.push(proxy);
  const logger = new RecordingLogger();
  const transport = broker.unconnected({
    url: urlThrough(proxy),
    logger,
    ...options,
    recovery: { ...FAST, ...options.recovery },
  });
  const events: ConnectionEvent[] = [];
  transport.onConnectionEvent((event) => events.push(event));
  await transport.connect();
  const topology = broker.topology();
  await transport.declare(topology);
  const seen = (type: ConnectionEvent['type']) => events.some((event) => event.type === type);
  return { proxy, logger, transport, events, topology, seen };
}

function publishJobs(transport: AmqpTransport, topology: QueueTopology, count: number) {
  const target = { exchange: '', routingKey: topology.queue };
  return Promise.all(
    Array.from({ length: count }, (_, n) =>
      transport.publish(target, Buffer.from(`{"n":${n}}`), { messageId: `job-${n}` }),
    ),
  );
}

describe('after the connection is cut', () => {
  it('delivers again on the same subscription, with the prefetch it was last given', async () => {
    const { proxy, transport, topology, events, seen } = await throughProxy();
    await publishJobs(transport, topology, 10);
    const deliveries: Delivery[] = [];
    const cancels: string[] = [];
    const subscription = await transport.consume(
      topology.queue,
      { prefetch: 1, onCancel: (reason) => cancels.push(reason) },
      (delivery) => deliveries.push(delivery),
    );
    await waitFor(() => deliveries.length === 1);
    // RabbitMQ counts prefetch per consumer: the new one takes 2 beside the old one's 1.
    await subscription.setPrefetch(2);
    await waitFor(() => deliveries.length === 3);

    proxy.cut();
    await waitFor(() => seen('recovered') && deliveries.length === 5);
    await sleep(200);
    expect(deliveries).toHaveLength(5);
    expect(deliveries.slice(3).map((d) => d.redelivered)).toEqual([true, true]);
    expect(events.map((event) => event.type)).toEqual(['lost', 'recovering', 'recovered']);
    expect(events[2]).toMatchObject({ attempts: 1, downtimeMs: expect.any(Number) });

    for (const delivery of deliveries.slice(3)) transport.ack(delivery);
    await waitFor(() => deliveries.length === 7);
    await sleep(200);
    expect(deliveries).toHaveLength(7);
    await subscription.setPrefetch(3);
    await waitFor(() => deliveries.length === 10);
    await subscription.cancel();
    expect(cancels).toEqual([]);
  });

  it('drops acks of deliveries from before the cut, so the new channel stays usable', async () => {
    const { proxy, logger, transport, topology, seen } = await throughProxy();
    await publishJobs(transport, topology, 4);
    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 1 }, (d) => deliveries.push(d));
    await waitFor(() => deliveries.length === 1);
    const stale = deliveries[0]!;

    proxy.cut();
    await waitFor(() => seen('recovered') && deliveries.length === 2);
    // On the new channel the redelivery has the same tag: a stale ack reaching it would ack it.
    expect(deliveries[1]).toMatchObject({ deliveryTag: stale.deliveryTag, redelivered: true });
    transport.ack(stale);
    transport.ack(stale);
    transport.nack(stale, { requeue: false });
    await sleep(200);
    expect(deliveries).toHaveLength(2);

    transport.ack(deliveries[1]!);
    await waitFor(() => deliveries.length === 3);
    transport.ack(deliveries[2]!);
    await waitFor(() => deliveries.length === 4);
    transport.ack(deliveries[3]!);
    await sleep(100);
    await expect(broker.admin.checkQueue(topology.queue)).resolves.toMatchObject({
      messageCount: 0,
      consumerCount: 1,
    });
    expect(logger.messages('debug')).toContain(
      'settle dropped: channel closed, the broker redelivers',
    );
    expect(logger.messages('debug')).toContain('settle ignored: delivery already settled');
    expect(logger.messages('warn')).not.toContain('consumer channel closed by the broker');
  });

  it('drops acks still waiting for the end of their turn when the connection goes in it', async () => {
    const { proxy, transport, topology, seen } = await throughProxy();
    await publishJobs(transport, topology, 4);
    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 3 }, (d) => deliveries.push(d));
    await waitFor(() => deliveries.length === 3);

    for (const delivery of deliveries) transport.ack(delivery);
    proxy.cut();
    await waitFor(() => seen('recovered') && deliveries.length === 6);
    // Tags 1 to 3 again, on the new channel. Had the old acks been sent on it, the prefetch
    // would have room, and the fourth job would come.
    expect(deliveries.slice(3).map((d) => [d.deliveryTag, d.redelivered])).toEqual(
      deliveries.slice(0, 3).map((d) => [d.deliveryTag, true]),
    );
    await sleep(200);
    expect(deliveries).toHaveLength(6);

    for (const delivery of deliveries.slice(3)) transport.ack(delivery);
    await waitFor(() => deliveries.length === 7);
    transport.ack(deliveries[6]!);
    await sleep(100);
    await expect(broker.admin.checkQueue(topology.queue)).resolves.toMatchObject({
      messageCount: 0,
    });
  });

  it('sends again what was sent but not confirmed, and every publish is confirmed once', async () => {
    const { proxy, logger, transport, topology, seen } = await throughProxy();
    proxy.stall();
    let settled = 0;
    const publishing = publishJobs(transport, topology, 5).finally(() => {
      settled += 1;
    });
    await sleep(100);

    proxy.cut();
    proxy.resume();
    await waitFor(() => seen('recovered'));
    await publishing;
    expect(settled).toBe(1);
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        message: 'unconfirmed publishes kept to send again',
        fields: expect.objectContaining({ messages: 5 }),
      }),
    );
    // The stalled bytes died with the cut, so the broker has each message once.
    await expect(broker.admin.checkQueue(topology.queue)).resolves.toMatchObject({
      messageCount: 5,
    });
  });

  it('ends a subscription to a reply queue with onCancel, since the queue went with the connection', async () => {
    const { proxy, transport, seen } = await throughProxy();
    const replyQueue = await transport.declareReplyQueue();
    const reasons: string[] = [];
    await transport.consume(
      replyQueue,
      { prefetch: 1, onCancel: (r) => reasons.push(r) },
      () => {},
    );

    proxy.cut();
    await waitFor(() => seen('recovered') && reasons.length === 1);
    expect(reasons[0]).toMatch(new RegExp(`queue "${replyQueue}" failed: .*NOT_FOUND`));
  });

  it('still reports a queue deleted under a resumed consumer through onCancel', async () => {
    const { proxy, transport, topology, seen } = await throughProxy();
    const reasons: string[] = [];
    const onCancel = (reason: string) => reasons.push(reason);
    await transport.consume(topology.queue, { prefetch: 1, onCancel }, () => {});

    proxy.cut();
    await waitFor(() => seen('recovered'));
    await broker.admin.deleteQueue(topology.queue);
    await waitFor(() => reasons.length === 1);

    expect(reasons[0]).toContain(`the broker cancelled the consumer of queue "${topology.queue}"`);
    await expect(publishJobs(transport, topology, 1)).resolves.toHaveLength(1);
  });
});

describe('while the broker cannot be reached', () => {
  it('buffers publishes and has them confirmed once it accepts connections again', async () => {
    const { proxy, transport, topology, events, seen } = await throughProxy();
    proxy.refuse(true);
    proxy.cut();
    await waitFor(() => seen('lost'));

    let settled = false;
    const publishing = publishJobs(transport, topology, 20).finally(() => {
      settled = true;
    });
    await waitFor(() => events.filter((event) => event.type === 'recovering').length >= 3);
    expect(settled).toBe(false);

    proxy.refuse(false);
    await expect(publishing).resolves.toHaveLength(20);
    await expect(broker.admin.checkQueue(topology.queue)).resolves.toMatchObject({
      messageCount: 20,
    });
    const attempts = events.filter((event) => event.type === 'recovering');
    expect(attempts.map((event) => 'attempt' in event && event.attempt)).toEqual(
      attempts.map((_, index) => index + 1),
    );
  });

  it('rejects a publish at once with PublishBufferFullError when the buffer is full', async () => {
    const { proxy, transport, topology, seen } = await throughProxy({
      publishBuffer: { maxMessages: 3 },
    });
    proxy.refuse(true);
    proxy.cut();
    await waitFor(() => seen('lost'));
    const held = publishJobs(transport, topology, 3);

    const refused = transport.publish(
      { exchange: '', routingKey: topology.queue },
      Buffer.from('{}'),
      {},
    );
    await expect(refused).rejects.toThrow(PublishBufferFullError);
    await expect(refused).rejects.toMatchObject({
      code: 'WARREN_PUBLISH_BUFFER_FULL',
      fate: 'retry',
    });
    await expect(refused).rejects.toThrow(/already holds 3 unconfirmed messages/);

    proxy.refuse(false);
    await expect(held).resolves.toHaveLength(3);
  });

  it('refuses a body larger than the byte limit, connected or not', async () => {
    const { transport, topology } = await throughProxy({ publishBuffer: { maxBytes: 10 } });
    const target = { exchange: '', routingKey: topology.queue };

    await expect(transport.publish(target, Buffer.alloc(11), {})).rejects.toThrow(
      PublishBufferFullError,
    );
    await expect(transport.publish(target, Buffer.alloc(10), {})).resolves.toBeUndefined();
  });

  it('gives up after giveUpAfterMs: onCancel, a gave-up event, and buffered publishes reject', async () => {
    const { proxy, logger, transport, topology, events } = await throughProxy({
      recovery: { giveUpAfterMs: 600 },
    });
    const reasons: string[] = [];
    await transport.consume(
      topology.queue,
      { prefetch: 1, onCancel: (r) => reasons.push(r) },
      () => {},
    );
    proxy.refuse(true);
    proxy.cut();
    await waitFor(() => events.length > 0);
    const buffered = publishJobs(transport, topology, 2).catch((error: unknown) => error);

    await waitFor(() => reasons.length === 1, 3_000);
    expect(reasons[0]).toMatch(/was lost and not recovered within 600 ms \(\d+ attempts\)/);
    expect(await buffered).toBeInstanceOf(BrokerUnreachableError);
    const gaveUp = events.at(-1);
    expect(gaveUp).toMatchObject({ type: 'gave-up', cause: expect.any(Error) });
    expect(gaveUp && 'downtimeMs' in gaveUp && gaveUp.downtimeMs).toBeGreaterThanOrEqual(600);
    expect(logger.messages('error')).toEqual(['broker connection not recovered; giving up']);
    await expect(publishJobs(transport, topology, 1)).rejects.toThrow(BrokerUnreachableError);
    await expect(transport.connect()).rejects.toThrow(/not recovered within 600 ms/);
    await expect(transport.close()).resolves.toBeUndefined();
  });

  it('stops recovering promptly on close, even with an attempt hanging, and rejects what it held', async () => {
    const { proxy, logger, transport, topology, events } = await throughProxy();
    proxy.stall();
    proxy.cut();
    await waitFor(() => events.some((event) => event.type === 'recovering'));
    await sleep(100);
    const buffered = publishJobs(transport, topology, 1).catch((error: unknown) => error);

    const started = Date.now();
    await transport.close();
    expect(Date.now() - started).toBeLessThan(500);
    expect(await buffered).toBeInstanceOf(PublishError);
    await sleep(100);
    expect(events.map((event) => event.type)).toEqual(['lost', 'recovering']);
    expect(logger.messages('warn')).not.toContain('broker reconnect failed');
    expect(logger.messages('info').at(-1)).toBe('transport closed');
  });

  it('makes connect, declare and consume wait for the recovery, then carry on', async () => {
    const { proxy, transport, topology, seen } = await throughProxy();
    proxy.refuse(true);
    proxy.cut();
    await waitFor(() => seen('lost'));

    const order: string[] = [];
    const deliveries: Delivery[] = [];
    const waiting = Promise.all([
      transport.connect().then(() => order.push('connect')),
      transport.declare(topology).then(() => order.push('declare')),
      transport.consume(topology.queue, { prefetch: 1 }, (d) => deliveries.push(d)),
    ]);
    await sleep(200);
    expect(order).toEqual([]);

    proxy.refuse(false);
    await waiting;
    expect(order.sort()).toEqual(['connect', 'declare']);
    await publishJobs(transport, topology, 1);
    await waitFor(() => deliveries.length === 1);
  });

  it('ends a subscription cancelled while the connection is down, for good', async () => {
    const { proxy, transport, topology, seen } = await throughProxy();
    const deliveries: Delivery[] = [];
    const subscription = await transport.consume(topology.queue, { prefetch: 1 }, (d) => {
      deliveries.push(d);
    });
    proxy.refuse(true);
    proxy.cut();
    await waitFor(() => seen('lost'));

    await subscription.cancel();
    await subscription.setPrefetch(5);
    proxy.refuse(false);
    await waitFor(() => seen('recovered'));
    await publishJobs(transport, topology, 1);
    await sleep(200);
    expect(deliveries).toEqual([]);
    await expect(broker.admin.checkQueue(topology.queue)).resolves.toMatchObject({
      messageCount: 1,
      consumerCount: 0,
    });
  });
});

describe('recovery', () => {
  it('follows a connection the broker closed (rabbitmqctl close_connection)', async () => {
    const connectionName = `warren-test-${randomUUID()}`;
    const transport = await broker.transport({ connectionName, recovery: FAST });
    const events: ConnectionEvent[] = [];
    transport.onConnectionEvent((event) => events.push(event));
    const topology = broker.topology();
    await transport.declare(topology);
    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      deliveries.push(delivery);
      transport.ack(delivery);
    });

    await closeConnectionNamed(connectionName);
    await waitFor(() => events.some((event) => event.type === 'recovered'));
    expect(events[0]).toMatchObject({
      type: 'lost',
      cause: expect.objectContaining({ message: expect.stringMatching(/CONNECTION_FORCED/) }),
    });
    await publishJobs(transport, topology, 1);
    await waitFor(() => deliveries.length === 1);
  });

  it('notices a stalled peer by its missed heartbeats, and recovers once it answers', async () => {
    const { proxy, transport, topology, events, seen } = await throughProxy({
      heartbeatSeconds: 1,
    });
    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      deliveries.push(delivery);
      transport.ack(delivery);
    });

    proxy.stall();
    await waitFor(() => seen('lost'), 5_000);
    expect(events[0]).toMatchObject({ type: 'lost', cause: new Error('Heartbeat timeout') });
    proxy.resume();
    await waitFor(() => seen('recovered'));
    await publishJobs(transport, topology, 1);
    await waitFor(() => deliveries.length === 1);
  });

  it('logs a connection listener that throws, and stops telling one that unsubscribed', async () => {
    const { proxy, logger, transport, seen } = await throughProxy();
    const told: string[] = [];
    const unsubscribe = transport.onConnectionEvent((event) => told.push(event.type));
    transport.onConnectionEvent(() => {
      throw new Error('listener bug');
    });

    proxy.cut();
    await waitFor(() => seen('recovered'));
    unsubscribe();
    proxy.cut();
    await waitFor(
      () => logger.messages('info').filter((m) => m.includes('recovered')).length === 2,
    );

    expect(told).toEqual(['lost', 'recovering', 'recovered']);
    expect(logger.messages('error')).toContain('connection listener threw');
  });
});

/** Closes this test's connection from the broker's side, found by its connection_name. */
async function closeConnectionNamed(connectionName: string): Promise<void> {
  const run = promisify(execFile);
  const listing = ['list_connections', 'pid', 'client_properties', '-q', '--no-table-headers'];
  const { stdout } = await run('rabbitmqctl', listing);
  // One line per connection: its process id, a tab, then its client properties as Erlang terms.
  const ours = stdout
    .split('\n')
    .find((line) => line.includes(`{"connection_name","${connectionName}"}`));
  const pid = ours?.split('\t')[0];
  if (pid === undefined) throw new Error(`no broker connection named ${connectionName}`);
  await run('rabbitmqctl', ['close_connection', pid, 'closed by a Warren test']);
}
