import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmqpTransport } from '@warren/amqp';
import { encodeJob, HEADERS, JobPublisher } from '@warren/core';
import { createSigner, KeySet, type SigningKey, signatureHeaders } from '@warren/security';
import type { ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditLog } from '../src/audit.ts';
import { parseConfig, Worker } from '../src/index.ts';
import {
  AMQP_URL,
  BrokerProbe,
  brokerEnv,
  type RawJob,
  TWO_QUICK_ATTEMPTS,
  testBroker,
  uniquePrefix,
  waitFor,
} from './support.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));

/** A key file with an old HMAC key and a new Ed25519 one, as during a rotation. */
function writeKeys(dir: string): { old: SigningKey; fresh: SigningKey; path: string } {
  const secret = randomBytes(32).toString('base64');
  const pair = generateKeyPairSync('ed25519');
  const publicKey = Buffer.from(pair.publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const privateKey = Buffer.from(pair.privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const file = {
    keys: [
      { id: 'old-hmac', alg: 'hmac-sha256', secret },
      {
        id: 'new-ed25519',
        alg: 'ed25519',
        publicKey: publicKey.toString('base64'),
        privateKey: privateKey.toString('base64'),
      },
    ],
  };
  const path = join(dir, 'signing-keys.json');
  writeFileSync(path, JSON.stringify(file), { mode: 0o600 });
  const keys = KeySet.fromJson(JSON.stringify(file), 'test keys');
  return { old: keys.get('old-hmac')!, fresh: keys.get('new-ed25519')!, path };
}

describe('signed jobs on a real broker', () => {
  const prefix = uniquePrefix();
  const dir = mkdtempSync(join(tmpdir(), 'warren-signing-'));
  const auditPath = join(dir, 'audit.jsonl');
  let probe: BrokerProbe;
  let worker: Worker;
  let producer: AmqpTransport;
  let deadLetters: ConsumeMessage[];
  let results: ConsumeMessage[];
  let replyQueue: string;
  let keys: ReturnType<typeof writeKeys>;

  /** A signed echo job, as the probe publishes it. */
  function signedJob(key: SigningKey, messageId: string, createdAt = Date.now()): RawJob {
    const { body, properties } = encodeJob({
      modelType: 'echo',
      tenant: 'acme',
      input: { text: messageId },
      messageId,
      replyTo: replyQueue,
      now: () => createdAt,
    });
    const headers = { ...properties.headers, ...signatureHeaders(key, body, properties) };
    return { body, properties: { ...properties, headers } };
  }

  function publish({ body, properties }: RawJob): void {
    probe.channel.publish(`${prefix}.jobs`, 'echo.public', body, {
      ...properties,
      headers: properties.headers,
    } as never);
  }

  const refused: Array<{ id: string; reason: string; make: () => RawJob }> = [
    {
      id: 'tampered-body',
      reason: 'bad-signature',
      make: () => ({
        ...signedJob(keys.old, 'tampered-body'),
        body: Buffer.from('{"text":"forged"}'),
      }),
    },
    {
      id: 'tampered-tenant',
      reason: 'bad-signature',
      make: () => {
        const job = signedJob(keys.old, 'tampered-tenant');
        const headers = { ...job.properties.headers, [HEADERS.tenant]: 'globex' };
        return { ...job, properties: { ...job.properties, headers } };
      },
    },
    {
      id: 'unknown-key',
      reason: 'unknown-key',
      make: () => {
        const stranger = KeySet.fromJson(
          JSON.stringify({
            keys: [
              { id: 'stranger', alg: 'hmac-sha256', secret: randomBytes(32).toString('base64') },
            ],
          }),
          'stranger',
        ).get('stranger')!;
        return signedJob(stranger, 'unknown-key');
      },
    },
    {
      id: 'expired',
      reason: 'stale',
      make: () => signedJob(keys.old, 'expired', Date.now() - 10 * 60_000),
    },
    {
      id: 'unsigned',
      reason: 'unsigned',
      make: () => {
        const job = signedJob(keys.old, 'unsigned');
        const {
          [HEADERS.signature]: _s,
          [HEADERS.keyId]: _k,
          [HEADERS.signatureAlg]: _a,
          ...headers
        } = job.properties.headers ?? {};
        return { ...job, properties: { ...job.properties, headers } };
      },
    },
  ];

  beforeAll(async () => {
    keys = writeKeys(dir);
    probe = await BrokerProbe.open();
    const config = parseConfig(
      {
        broker: testBroker(),
        topology: { prefix },
        handlers: [
          {
            module: ECHO,
            prefetch: 4,
            retry: TWO_QUICK_ATTEMPTS,
          },
        ],
        security: {
          signing: { keysFile: keys.path, windowMs: 5 * 60_000 },
          auditLog: auditPath,
        },
      },
      process.cwd(),
    );
    worker = await Worker.start({ config, logger: pino({ level: 'silent' }), env: brokerEnv() });
    deadLetters = await probe.collect(`${prefix}.dead-letter.echo`);
    const reply = await probe.replyQueue();
    results = reply.messages;
    replyQueue = reply.queue;

    // The producer side: a publisher with a signer, once with each key of the rotation.
    producer = new AmqpTransport({ url: AMQP_URL });
    await producer.connect();
    for (const [key, text] of [
      [keys.old, 'signed with the old key'],
      [keys.fresh, 'signed with the new key'],
    ] as const) {
      await new JobPublisher(producer, { prefix }, { signer: createSigner(key) }).publish({
        modelType: 'echo',
        tenant: 'acme',
        input: { text },
        messageId: `valid-${key.id}`,
        replyTo: replyQueue,
      });
    }
    // A valid job, then the same bytes again once it has been accepted.
    const original = signedJob(keys.old, 'replayed');
    publish(original);
    const second = signedJob(keys.old, 'replayed-as-retry');
    publish(second);
    await waitFor(() => results.length === 4, 'the valid jobs’ results');
    publish(original);
    // The same bytes, claiming to be a retry: the attempt header is not signed, and this one
    // was not republished by a worker account, so the replay checks still apply.
    publish({
      ...second,
      properties: {
        ...second.properties,
        headers: { ...second.properties.headers, [HEADERS.attempt]: 2 },
      },
    });
    for (const { make } of refused) publish(make());
    await waitFor(() => deadLetters.length === refused.length + 2, 'the refused jobs');
  });

  it('takes back a signed job the worker itself retried, and runs its second attempt', async () => {
    const { body, properties } = encodeJob({
      modelType: 'echo',
      tenant: 'acme',
      input: { text: 'x', failWith: 'always' },
      messageId: 'retried',
    });
    const headers = { ...properties.headers, ...signatureHeaders(keys.old, body, properties) };
    publish({ body, properties: { ...properties, headers } });
    await waitFor(() => deadLetters.some((m) => m.properties.messageId === 'retried'), 'it');

    const letter = deadLetters.find((m) => m.properties.messageId === 'retried')!;
    // Its second attempt was handled and failed again: not refused as a replay.
    expect(letter.properties.headers).toMatchObject({
      [HEADERS.reason]: 'handler-failed',
      [HEADERS.attempts]: 2,
    });
    expect(letter.properties.userId).toBe('guest');
  });

  afterAll(async () => {
    await producer?.close();
    await worker?.stop();
    await probe?.deleteTopology(prefix, ['echo'], { retry: TWO_QUICK_ATTEMPTS });
    await probe?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('handles valid jobs signed with the old key and the new one', () => {
    const answered = results.map((m) => m.properties.correlationId).sort();
    expect(answered).toEqual([
      'replayed',
      'replayed-as-retry',
      'valid-new-ed25519',
      'valid-old-hmac',
    ]);
    expect(
      JSON.parse(
        results.find((m) => m.properties.correlationId === 'valid-new-ed25519')!.content.toString(),
      ),
    ).toEqual({
      echo: 'signed with the new key',
    });
  });

  it.each([
    ...refused.map(({ id, reason }) => ({ id, reason })),
    { id: 'replayed', reason: 'replayed' },
    { id: 'replayed-as-retry', reason: 'replayed' },
  ])('dead-letters the $id job with reason $reason, without handling it', ({ id, reason }) => {
    const letter = deadLetters.find((m) => m.properties.messageId === id);
    expect(letter, 'its dead letter').toBeDefined();
    expect(letter!.properties.headers).toMatchObject({
      [HEADERS.reason]: reason,
      [HEADERS.errorCode]: 'WARREN_SIGNATURE_INVALID',
      [HEADERS.sourceQueue]: `${prefix}.jobs.echo`,
    });
    // Only the valid jobs produced a result, each once: the handler ran for none of these.
    const expected = id.startsWith('replayed') ? 1 : 0;
    expect(results.filter((m) => m.properties.correlationId === id)).toHaveLength(expected);
  });

  it('counts the jobs handled, retried and refused, and audits each decision and publish', async () => {
    const counts = () => worker.consumers[0]!.consumer.counts;
    await waitFor(() => counts().deadLettered === 8, 'the refusals to be acked');
    // Eleven jobs once each, and the retried one twice; seven refusals and its last failure.
    expect(counts()).toMatchObject({ received: 13, succeeded: 4, deadLettered: 8, retried: 1 });

    const lines = readFileSync(auditPath, 'utf-8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const admissions = lines.filter((line) => line.event === 'warren.job.admitted');
    // One line per delivery's decision: six accepted, seven refused (the replays among them).
    expect(admissions).toHaveLength(13);
    expect(admissions.filter((line) => line.decision === 'refused')).toHaveLength(7);
    expect(admissions.find((line) => line.messageId === 'valid-new-ed25519')).toMatchObject({
      decision: 'accepted',
      identity: 'key:new-ed25519',
      tenant: 'acme',
      scope: 'public',
    });
    // And one per publish the worker made for them: results, a retry, dead letters.
    const publishes = lines.filter((line) => line.event === 'warren.job.published');
    expect(publishes.map((line) => line.action).sort()).toEqual([
      ...Array(8).fill('dead-letter'),
      ...Array(4).fill('result'),
      'retry',
    ]);
    expect(lines.find((line) => line.messageId === 'tampered-tenant')).toMatchObject({
      event: 'warren.job.admitted',
      decision: 'refused',
      reason: 'bad-signature',
      identity: 'key:old-hmac',
      tenant: 'globex',
      queue: `${prefix}.jobs.echo`,
    });
  });
});

describe('the audit log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-audit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stops the worker at start when it cannot be appended to, naming the path', () => {
    const auditLog = join(dir, 'no-such-folder', 'audit.jsonl');
    const config = parseConfig(
      { handlers: [{ module: ECHO }], security: { auditLog } },
      process.cwd(),
    );
    expect(() => openAuditLog(config, pino({ level: 'silent' }))).toThrow(
      `config.security.auditLog ${auditLog}: cannot be appended to`,
    );
  });

  it('logs a write that fails later instead of throwing into the decision', () => {
    const auditLog = join(dir, 'audit.jsonl');
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line)) },
    );
    const config = parseConfig(
      { handlers: [{ module: ECHO }], security: { auditLog } },
      process.cwd(),
    );
    const sink = openAuditLog(config, logger)!;
    sink.record({
      time: new Date().toISOString(),
      event: 'warren.job.admitted',
      decision: 'refused',
    });
    expect(readFileSync(auditLog, 'utf-8')).toContain('"decision":"refused"');
    // The file becomes a folder: appends fail from now on.
    rmSync(auditLog);
    mkdirSync(auditLog);

    expect(() =>
      sink.record({
        time: new Date().toISOString(),
        event: 'warren.job.admitted',
        decision: 'refused',
      }),
    ).not.toThrow();
    expect(lines.some((line) => line.msg === 'audit log write failed')).toBe(true);
  });
});
