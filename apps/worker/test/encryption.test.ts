import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmqpTransport } from '@warren/amqp';
import { encodeJob, HEADERS, JobPublisher } from '@warren/core';
import {
  aesKey,
  createEncryptor,
  createSigner,
  type EncryptionKey,
  EncryptionKeySet,
  KeySet,
  type SigningKey,
  sealBody,
  signatureHeaders,
} from '@warren/security';
import type { ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, Worker } from '../src/index.ts';
import {
  AMQP_URL,
  BrokerProbe,
  type RawJob,
  TWO_QUICK_ATTEMPTS,
  uniquePrefix,
  waitFor,
} from './support.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const KEYS_ENV = 'WARREN_TEST_ENCRYPTION_KEYS';

/** Words that appear only in the plaintext of the jobs below: never in a log or dead letter. */
const SECRET = 'nightingale-cipher';

describe('encrypted and signed jobs on a real broker', () => {
  const prefix = uniquePrefix();
  const dir = mkdtempSync(join(tmpdir(), 'warren-encryption-'));
  const logLines: string[] = [];
  let probe: BrokerProbe;
  let worker: Worker;
  let producer: AmqpTransport;
  let deadLetters: ConsumeMessage[];
  let results: ConsumeMessage[];
  let replyQueue: string;
  let signingKey: SigningKey;
  let oldKey: EncryptionKey;
  let newKey: EncryptionKey;
  const sent = new Map<string, Buffer>();

  /** An echo job as a producer with the keys seals and signs it, by hand. */
  function sealedJob(
    messageId: string,
    key: EncryptionKey,
    input: object = { text: `${SECRET} ${messageId}` },
  ): RawJob {
    const job = encodeJob({
      modelType: 'echo',
      tenant: 'acme',
      input,
      messageId,
      replyTo: replyQueue,
    });
    const { body, headers } = sealBody(key, job.body, job.properties);
    return signed({
      body,
      properties: { ...job.properties, headers: { ...job.properties.headers, ...headers } },
    });
  }

  function signed({ body, properties }: RawJob): RawJob {
    const headers = { ...properties.headers, ...signatureHeaders(signingKey, body, properties) };
    return { body, properties: { ...properties, headers } };
  }

  function publish(job: RawJob): void {
    sent.set(job.properties.messageId!, job.body);
    probe.channel.publish(`${prefix}.jobs`, 'echo.public', job.body, job.properties as never);
  }

  const refused: Array<{ id: string; reason: string; code: string; make: () => RawJob }> = [
    {
      // The signature covers the ciphertext: a changed byte is refused before decrypting.
      id: 'tampered-ciphertext',
      reason: 'bad-signature',
      code: 'WARREN_SIGNATURE_INVALID',
      make: () => {
        const job = sealedJob('tampered-ciphertext', newKey);
        const body = Buffer.from(job.body);
        body[20] = body[20]! ^ 0x01;
        return { ...job, body };
      },
    },
    {
      // A producer that may sign, but holds no encryption key, moves another job's ciphertext.
      id: 'moved-ciphertext',
      reason: 'decryption-failed',
      code: 'WARREN_DECRYPTION_REFUSED',
      make: () => {
        const original = sealedJob('original-job', newKey);
        const job = encodeJob({
          modelType: 'echo',
          tenant: 'acme',
          input: {},
          messageId: 'moved-ciphertext',
          replyTo: replyQueue,
        });
        return signed({
          body: original.body,
          properties: {
            ...job.properties,
            headers: {
              ...job.properties.headers,
              [HEADERS.encryption]: 'aes-256-gcm',
              [HEADERS.encryptionKeyId]: newKey.id,
            },
          },
        });
      },
    },
    {
      id: 'unknown-encryption-key',
      reason: 'unknown-encryption-key',
      code: 'WARREN_DECRYPTION_REFUSED',
      make: () => sealedJob('unknown-encryption-key', aesKey('retired', randomBytes(32))),
    },
    {
      id: 'too-short',
      reason: 'malformed-encryption',
      code: 'WARREN_DECRYPTION_REFUSED',
      make: () => {
        const job = sealedJob('too-short', newKey);
        return signed({ ...job, body: job.body.subarray(0, 20) });
      },
    },
    {
      // The worker requires encryption: a signed plaintext job is refused, unhandled.
      id: 'plaintext',
      reason: 'unencrypted',
      code: 'WARREN_DECRYPTION_REFUSED',
      make: () =>
        signed(
          encodeJob({
            modelType: 'echo',
            tenant: 'acme',
            input: { text: SECRET },
            messageId: 'plaintext',
            replyTo: replyQueue,
          }),
        ),
    },
  ];

  beforeAll(async () => {
    const signingFile = {
      keys: [{ id: 'producer-1', alg: 'hmac-sha256', secret: randomBytes(32).toString('base64') }],
    };
    const signingPath = join(dir, 'signing-keys.json');
    writeFileSync(signingPath, JSON.stringify(signingFile), { mode: 0o600 });
    signingKey = KeySet.fromJson(JSON.stringify(signingFile), 'test').get('producer-1')!;
    // The worker holds an old and a new encryption key, as during a rotation.
    const encryptionFile = JSON.stringify({
      keys: ['2025-q4', '2026-q1'].map((id) => ({
        id,
        alg: 'aes-256-gcm',
        secret: randomBytes(32).toString('base64'),
      })),
    });
    const encryptionKeys = EncryptionKeySet.fromJson(encryptionFile, 'test');
    oldKey = encryptionKeys.get('2025-q4')!;
    newKey = encryptionKeys.get('2026-q1')!;

    probe = await BrokerProbe.open();
    const config = parseConfig(
      {
        topology: { prefix },
        handlers: [
          {
            module: ECHO,
            prefetch: 4,
            retry: TWO_QUICK_ATTEMPTS,
          },
        ],
        security: {
          signing: { keysFile: signingPath },
          encryption: { keysEnv: KEYS_ENV, required: true },
        },
      },
      process.cwd(),
    );
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
    // The broker URL, with its password, comes from the environment, never the config file.
    worker = await Worker.start({
      config,
      logger,
      env: { AMQP_URL, [KEYS_ENV]: encryptionFile },
    });
    deadLetters = await probe.collect(`${prefix}.dead-letter.echo`);
    const reply = await probe.replyQueue();
    results = reply.messages;
    replyQueue = reply.queue;

    // The producer side: a publisher that encrypts, then signs, once with each key of the rotation.
    producer = new AmqpTransport({ url: AMQP_URL });
    await producer.connect();
    for (const key of [oldKey, newKey]) {
      await new JobPublisher(
        producer,
        { prefix },
        { encryptor: createEncryptor(key), signer: createSigner(signingKey) },
      ).publish({
        modelType: 'echo',
        tenant: 'acme',
        input: { text: `${SECRET} with ${key.id}` },
        messageId: `valid-${key.id}`,
        replyTo: replyQueue,
      });
    }
    // Fails in the handler: retried with its ciphertext, decrypted again, then dead-lettered.
    publish(sealedJob('fails', newKey, { text: SECRET, failWith: 'always' }));
    for (const { make } of refused) publish(make());
    await waitFor(() => results.length === 2, 'the valid jobs’ results');
    await waitFor(() => deadLetters.length === refused.length + 1, 'the dead letters');
  });

  afterAll(async () => {
    await producer?.close();
    await worker?.stop();
    await probe?.deleteTopology(prefix, ['echo'], { retry: TWO_QUICK_ATTEMPTS });
    await probe?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('handles jobs sealed with the old key and the new one, with their plaintext', () => {
    const answers = Object.fromEntries(
      results.map((m) => [m.properties.correlationId, JSON.parse(m.content.toString())]),
    );
    expect(answers).toEqual({
      'valid-2025-q4': { echo: `${SECRET} with 2025-q4` },
      'valid-2026-q1': { echo: `${SECRET} with 2026-q1` },
    });
  });

  it.each(refused.map(({ id, reason, code }) => ({ id, reason, code })))(
    'dead-letters the $id job as $reason, unhandled, with its body byte for byte',
    ({ id, reason, code }) => {
      const letter = deadLetters.find((m) => m.properties.messageId === id);
      expect(letter, 'its dead letter').toBeDefined();
      expect(letter!.properties.headers).toMatchObject({
        [HEADERS.reason]: reason,
        [HEADERS.errorCode]: code,
        [HEADERS.attempts]: 1,
      });
      expect(letter!.content.equals(sent.get(id)!)).toBe(true);
      expect(results.some((m) => m.properties.correlationId === id)).toBe(false);
    },
  );

  it('retries a sealed job with its ciphertext, and opens it again on the next attempt', () => {
    const letter = deadLetters.find((m) => m.properties.messageId === 'fails')!;
    // Its second attempt was decrypted and handled, and failed in the handler again.
    expect(letter.properties.headers).toMatchObject({
      [HEADERS.reason]: 'handler-failed',
      [HEADERS.attempts]: 2,
      [HEADERS.encryption]: 'aes-256-gcm',
      [HEADERS.encryptionKeyId]: '2026-q1',
    });
    expect(letter.content.equals(sent.get('fails')!)).toBe(true);
  });

  it('writes no plaintext of a sealed job to a dead letter or to the log', () => {
    const sealedLetters = deadLetters.filter((m) => m.properties.messageId !== 'plaintext');
    for (const letter of sealedLetters) {
      expect(letter.content.includes(Buffer.from(SECRET))).toBe(false);
      expect(JSON.stringify(letter.properties.headers)).not.toContain(SECRET);
    }
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.filter((line) => line.includes(SECRET))).toEqual([]);
  });
});

describe('the encryption config', () => {
  it('stops the worker at start when the key variable is unset, naming it', async () => {
    const config = parseConfig(
      { handlers: [{ module: ECHO }], security: { encryption: { keysEnv: KEYS_ENV } } },
      process.cwd(),
    );
    await expect(
      Worker.start({ config, logger: pino({ level: 'silent' }), env: {} }),
    ).rejects.toThrow(
      `config.security.encryption.keysEnv: expected environment variable ${KEYS_ENV} to be set, found it unset`,
    );
  });

  it('refuses a section with both a key file and a key variable', () => {
    expect(() =>
      parseConfig(
        {
          handlers: [{ module: ECHO }],
          security: { encryption: { keysEnv: KEYS_ENV, keysFile: 'k.json' } },
        },
        process.cwd(),
      ),
    ).toThrow('config.security.encryption: expected exactly one of keysFile and keysEnv');
  });

  it('reads the key file relative to the config file, and says when it cannot', async () => {
    const config = parseConfig(
      { handlers: [{ module: ECHO }], security: { encryption: { keysFile: 'missing.json' } } },
      '/nonexistent-config-dir',
    );
    expect(config.security.encryption).toMatchObject({
      keysFile: '/nonexistent-config-dir/missing.json',
      required: false,
    });
    await expect(
      Worker.start({ config, logger: pino({ level: 'silent' }), env: {} }),
    ).rejects.toThrow(
      'config.security.encryption.keysFile /nonexistent-config-dir/missing.json: cannot be read',
    );
  });
});
