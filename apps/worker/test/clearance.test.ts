import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AmqpTransport } from '@warren/amqp';
import { encodeJob, HEADERS, JobPublisher, type JobSpec, topologyFor } from '@warren/core';
import type { ConsumeMessage } from 'amqplib';
import { connect } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, Worker } from '../src/index.ts';
import { AMQP_URL, BrokerProbe, brokerEnv, testBroker, uniquePrefix, waitFor } from './support.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const VAULT = fileURLToPath(new URL('./fixtures/vault.ts', import.meta.url));
const rabbitmqctl = (...args: string[]) => promisify(execFile)('rabbitmqctl', args);

/**
 * A restricted job must never reach a handler that is not cleared for it, whichever of the
 * three enforcement points is taken away: the topology (its routing key is bound only to the
 * cleared queue), the consumer's own check (scope and tenant), and the producer check (the
 * broker-validated user_id against the accounts allowed for the scope).
 */
describe('clearance, against the real broker', () => {
  const prefix = uniquePrefix();
  const dir = mkdtempSync(join(tmpdir(), 'warren-clearance-'));
  const auditPath = join(dir, 'audit.jsonl');
  // A producer account of its own: the broker checks user_id against it.
  const producerUser = `warren-test-producer-${randomUUID().slice(0, 8)}`;
  const producerPassword = randomBytes(12).toString('hex');
  const publicQueue = topologyFor('echo', { prefix }).queue;
  const restricted = topologyFor('echo', { prefix, scope: 'restricted' });
  let worker: Worker;
  let probe: BrokerProbe;
  let producer: AmqpTransport;
  let guest: AmqpTransport;
  let publisher: JobPublisher;
  let guestPublisher: JobPublisher;
  let results: ConsumeMessage[];
  let replyTo: string;
  let publicDeadLetters: ConsumeMessage[];
  let restrictedDeadLetters: ConsumeMessage[];

  const job = (messageId: string, spec: Partial<JobSpec> = {}): JobSpec => ({
    modelType: 'echo',
    tenant: 'acme',
    scope: 'restricted',
    input: { text: messageId },
    messageId,
    replyTo,
    ...spec,
  });
  const answeredBy = (messageId: string) =>
    results
      .filter((m) => m.properties.correlationId === messageId)
      .map((m) => m.properties.headers?.[HEADERS.handler]);
  const counts = (handler: string) =>
    worker.consumers.find((c) => c.handler === handler)!.consumer.counts;

  beforeAll(async () => {
    await rabbitmqctl('add_user', producerUser, producerPassword);
    await rabbitmqctl('set_permissions', '-p', '/', producerUser, '.*', '.*', '.*');
    probe = await BrokerProbe.open();
    const config = parseConfig(
      {
        broker: testBroker(),
        topology: { prefix },
        handlers: [
          { module: ECHO, prefetch: 4 },
          { module: VAULT, prefetch: 4, clearance: { producers: { restricted: [producerUser] } } },
        ],
        security: { auditLog: auditPath },
      },
      process.cwd(),
    );
    worker = await Worker.start({ config, logger: pino({ level: 'silent' }), env: brokerEnv() });
    const reply = await probe.replyQueue();
    results = reply.messages;
    replyTo = reply.queue;
    publicDeadLetters = await probe.collect(topologyFor('echo', { prefix }).deadLetterQueue);
    restrictedDeadLetters = await probe.collect(restricted.deadLetterQueue);

    const url = new URL(AMQP_URL);
    url.username = producerUser;
    url.password = producerPassword;
    producer = new AmqpTransport({ url: url.toString() });
    await producer.connect();
    publisher = new JobPublisher(producer, { prefix }, { userId: producerUser });
    guest = new AmqpTransport({ url: AMQP_URL });
    await guest.connect();
    guestPublisher = new JobPublisher(guest, { prefix }, { userId: 'guest' });
  });

  afterAll(async () => {
    await producer?.close();
    await guest?.close();
    await worker?.stop();
    await probe?.channel.deleteQueue(restricted.queue);
    await probe?.channel.deleteQueue(restricted.deadLetterQueue);
    for (const { name } of restricted.delayQueues) await probe?.channel.deleteQueue(name);
    await probe?.deleteTopology(prefix, ['echo']);
    await probe?.close();
    await rabbitmqctl('delete_user', producerUser).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives each scope a queue of its own, bound to its routing key alone', async () => {
    expect(restricted.queue).toBe(`${prefix}.jobs.echo:restricted`);
    expect(restricted.bindings).toEqual(['echo.restricted']);
    expect(worker.consumers.map((c) => c.consumer.queue).sort()).toEqual(
      [publicQueue, restricted.queue].sort(),
    );
  });

  it('serves a restricted job from an allowed producer with the cleared handler alone', async () => {
    await publisher.publish(job('allowed'));
    await publisher.publish(job('public-one', { scope: 'public' }));
    await waitFor(() => results.length === 2, 'both results');

    expect(answeredBy('allowed')).toEqual(['vault']);
    expect(answeredBy('public-one')).toEqual(['echo']);
  });

  it('without the consumer check, the topology alone keeps restricted jobs off the public queue', async () => {
    const before = counts('echo').received;
    for (let i = 0; i < 5; i += 1) await publisher.publish(job(`topology-${i}`));
    await waitFor(() => counts('vault').succeeded >= 6, 'the vault to answer them');

    // The public consumer never received one, so its own check was never needed.
    expect(counts('echo').received).toBe(before);
    expect((await probe.messageCount(publicQueue)).messageCount).toBe(0);
  });

  it('refuses a tenant outside the clearance, and a producer not allowed for the scope', async () => {
    await publisher.publish(job('other-tenant', { tenant: 'globex' }));
    await guestPublisher.publish(job('wrong-producer'));
    await waitFor(() => restrictedDeadLetters.length === 2, 'two refusals');

    const reasons = Object.fromEntries(
      restrictedDeadLetters.map((m) => [
        m.properties.messageId,
        m.properties.headers?.[HEADERS.reason],
      ]),
    );
    expect(reasons).toEqual({
      'other-tenant': 'tenant-not-cleared',
      'wrong-producer': 'producer-not-allowed',
    });
    expect(restrictedDeadLetters[0]!.properties.headers?.[HEADERS.errorCode]).toBe(
      'WARREN_FORBIDDEN',
    );
    expect(answeredBy('other-tenant')).toEqual([]);
    expect(answeredBy('wrong-producer')).toEqual([]);
  });

  it('without the topology, the consumer check refuses a restricted job the public queue received', async () => {
    // Someone binds the restricted key to the public queue too: now both queues get a copy.
    await probe.channel.bindQueue(publicQueue, `${prefix}.jobs`, 'echo.restricted');
    try {
      await publisher.publish(job('misrouted'));
      await waitFor(() => publicDeadLetters.length === 1, 'the public consumer to refuse it');
      await waitFor(() => answeredBy('misrouted').length === 1, 'the vault to answer its copy');
    } finally {
      await probe.channel.unbindQueue(publicQueue, `${prefix}.jobs`, 'echo.restricted');
    }

    expect(publicDeadLetters[0]!.properties.messageId).toBe('misrouted');
    expect(publicDeadLetters[0]!.properties.headers?.[HEADERS.reason]).toBe('scope-not-cleared');
    expect(answeredBy('misrouted')).toEqual(['vault']);
  });

  it('without a producer list, topology and consumer check still keep restricted jobs from the public handler', async () => {
    // A producer account that may publish anything (no producer check applies to it for the
    // public handler, whose clearance names none) still cannot reach it with a restricted job.
    const before = counts('echo').received;
    await guestPublisher.publish(job('guest-restricted', { tenant: 'globex' }));
    await waitFor(() => restrictedDeadLetters.length === 3, 'the vault to refuse it');
    expect(counts('echo').received).toBe(before);
    expect(answeredBy('guest-restricted')).toEqual([]);
  });

  it('has the broker refuse a publish whose user_id is not the connecting account', async () => {
    const connection = await connect(AMQP_URL);
    try {
      const channel = await connection.createConfirmChannel();
      channel.on('error', () => {});
      const { body, properties } = encodeJob(job('forged-user'));
      const closed = new Promise<Error>((resolve) =>
        channel.once('close', () => resolve(new Error('closed'))),
      );
      channel.publish(`${prefix}.jobs`, 'echo.restricted', body, {
        ...properties,
        userId: producerUser,
      });
      await expect(channel.waitForConfirms()).rejects.toThrow();
      await closed;
    } finally {
      await connection.close().catch(() => undefined);
    }
    expect(answeredBy('forged-user')).toEqual([]);
  });

  it('audits each admission, with the producer account, and each refusal with its reason', () => {
    const lines = readFileSync(auditPath, 'utf-8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const admissions = lines.filter((line) => line.event === 'warren.job.admitted');
    expect(admissions.find((line) => line.messageId === 'allowed')).toMatchObject({
      decision: 'accepted',
      identity: `user:${producerUser}`,
      tenant: 'acme',
      scope: 'restricted',
      queue: restricted.queue,
    });
    expect(admissions.find((line) => line.messageId === 'wrong-producer')).toMatchObject({
      decision: 'refused',
      reason: 'producer-not-allowed',
    });
    // guest is also the worker's own account, a relay: a job it sent names no original producer.
    expect(admissions.find((line) => line.messageId === 'wrong-producer').identity).toBeUndefined();
    expect(
      admissions
        .filter((line) => line.messageId === 'misrouted')
        .map((line) => line.decision)
        .sort(),
    ).toEqual(['accepted', 'refused']);
  });
});
