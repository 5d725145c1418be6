import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Consumer, type ConsumerOptions } from '../src/consumer.ts';
import type { BodyDecryptor, Decryption, JobEncryptor } from '../src/encryption.ts';
import { encodeJob, HEADERS } from '../src/envelope.ts';
import { defineHandler } from '../src/handler.ts';
import type { InferenceClient } from '../src/inference.ts';
import { JobPublisher } from '../src/publisher.ts';
import type { JobSigner, JobVerifier } from '../src/signing.ts';
import type { Delivery, MessageProperties } from '../src/transport.ts';
import { FakeBroker, waitFor } from './telemetry-support.ts';

/*
 * Core's side of encryption, with a stand-in cipher: core must not depend on @warren/security,
 * and what is tested here is the seam (when bodies are decoded, what a refusal becomes, that a
 * dead letter keeps the sealed bytes), not AES-GCM, which packages/security tests.
 */

const inference: InferenceClient = {
  featureExtraction: async () => [],
  textClassification: async () => [],
};

const handled: string[] = [];

const handler = defineHandler({
  name: 'shout',
  modelType: 'echo',
  input: z.object({ text: z.string() }),
  async handle({ text }) {
    handled.push(text);
    return { shout: text.toUpperCase() };
  },
});

/** The stand-in cipher: `toy:` and the bytes reversed, under key `k1`. */
const TOY_PREFIX = Buffer.from('toy:');

function toySeal(plaintext: Buffer): Buffer {
  return Buffer.concat([TOY_PREFIX, Buffer.from(plaintext).reverse()]);
}

const toyEncryptor: JobEncryptor = {
  encrypt: (body) => ({
    body: toySeal(body),
    headers: { [HEADERS.encryption]: 'toy', [HEADERS.encryptionKeyId]: 'k1' },
  }),
};

function toyDecrypt(delivery: Delivery): Decryption {
  const keyId = delivery.properties.headers?.[HEADERS.encryptionKeyId];
  if (keyId !== 'k1') {
    return { decrypted: false, reason: 'unknown-encryption-key', message: `no key ${keyId}` };
  }
  if (!delivery.body.subarray(0, TOY_PREFIX.length).equals(TOY_PREFIX)) {
    return { decrypted: false, reason: 'decryption-failed', message: 'does not authenticate' };
  }
  const plaintext = Buffer.from(delivery.body.subarray(TOY_PREFIX.length)).reverse();
  return { decrypted: true, plaintext, keyId };
}

function toyDecryptor(required = false): BodyDecryptor & { calls: number } {
  const decryptor = {
    required,
    calls: 0,
    decrypt(delivery: Delivery) {
      decryptor.calls += 1;
      return toyDecrypt(delivery);
    },
  };
  return decryptor;
}

/** A job as a producer without Warren's publisher would send it, sealed or not. */
function rawJob(
  messageId: string,
  body: Buffer,
  headers: MessageProperties['headers'] = {},
): { body: Buffer; properties: MessageProperties } {
  const job = encodeJob({ modelType: 'echo', tenant: 'acme', input: null, messageId });
  return {
    body,
    properties: { ...job.properties, headers: { ...job.properties.headers, ...headers } },
  };
}

const SEALED = { [HEADERS.encryption]: 'toy', [HEADERS.encryptionKeyId]: 'k1' };

async function startConsumer(options: Partial<ConsumerOptions> = {}) {
  const broker = new FakeBroker();
  const consumer = new Consumer({
    handler,
    transport: broker,
    inference,
    logger: pino({ level: 'silent' }),
    retry: { maxAttempts: 2, initialDelayMs: 1, multiplier: 1, maxDelayMs: 1, jitter: 0 },
    ...options,
  });
  await consumer.start();
  return { broker, consumer };
}

function deadLetterOf(broker: FakeBroker, messageId: string) {
  return broker.to('warren.dead-letter').find((m) => m.properties.messageId === messageId);
}

describe('encrypted jobs in the consumer', () => {
  it('handles an encrypted job with its plaintext, which never travels', async () => {
    handled.length = 0;
    const { broker, consumer } = await startConsumer({ decryptor: toyDecryptor() });
    await new JobPublisher(broker, {}, { encryptor: toyEncryptor }).publish({
      modelType: 'echo',
      tenant: 'acme',
      input: { text: 'hello' },
      messageId: 'sealed-1',
    });
    await waitFor(() => broker.to('warren.results').length === 1);
    await consumer.stop();

    const job = broker.to('warren.jobs')[0]!;
    expect(job.body).toEqual(toySeal(Buffer.from('{"text":"hello"}')));
    expect(job.properties.headers).toMatchObject(SEALED);
    expect(job.properties.contentType).toBe('application/json');
    expect(handled).toEqual(['hello']);
    expect(JSON.parse(broker.to('warren.results')[0]!.body.toString())).toEqual({ shout: 'HELLO' });
  });

  it('encrypts before signing, so that the signer signs the ciphertext and its headers', async () => {
    const broker = new FakeBroker();
    const seen: Array<{ body: Buffer; properties: MessageProperties }> = [];
    const signer: JobSigner = {
      sign: (body, properties) => {
        seen.push({ body, properties });
        return { [HEADERS.signature]: 'sig' };
      },
    };
    await new JobPublisher(broker, {}, { encryptor: toyEncryptor, signer }).publish({
      modelType: 'echo',
      tenant: 'acme',
      input: { text: 'hello' },
    });

    expect(seen[0]!.body).toEqual(toySeal(Buffer.from('{"text":"hello"}')));
    expect(seen[0]!.properties.headers).toMatchObject(SEALED);
    expect(broker.published[0]!.properties.headers).toMatchObject({
      ...SEALED,
      [HEADERS.signature]: 'sig',
    });
  });

  it('handles plaintext jobs as before when encryption is not required', async () => {
    handled.length = 0;
    const decryptor = toyDecryptor();
    const { broker, consumer } = await startConsumer({ decryptor });
    await new JobPublisher(broker).publish({
      modelType: 'echo',
      tenant: 'a',
      input: { text: 'x' },
    });
    await waitFor(() => consumer.counts.succeeded === 1);
    await consumer.stop();

    expect(handled).toEqual(['x']);
    expect(decryptor.calls).toBe(0);
  });

  const ciphertext = toySeal(Buffer.from('{"text":"secret"}'));
  it.each([
    {
      case: 'an encrypted job on a consumer without a decryptor',
      reason: 'no-decryptor',
      decryptor: undefined,
      job: rawJob('no-decryptor', ciphertext, SEALED),
    },
    {
      case: 'a key id the decryptor does not hold',
      reason: 'unknown-encryption-key',
      decryptor: toyDecryptor(),
      job: rawJob('unknown-key', ciphertext, { ...SEALED, [HEADERS.encryptionKeyId]: 'k9' }),
    },
    {
      case: 'a ciphertext that does not authenticate',
      reason: 'decryption-failed',
      decryptor: toyDecryptor(),
      job: rawJob('tampered', Buffer.from([0x01, ...ciphertext.subarray(1)]), SEALED),
    },
    {
      case: 'a plaintext job where encryption is required',
      reason: 'unencrypted',
      decryptor: toyDecryptor(true),
      job: rawJob('plaintext', Buffer.from('{"text":"secret"}')),
    },
    {
      case: 'a stripped ciphertext (no encryption header) where encryption is required',
      reason: 'unencrypted',
      decryptor: toyDecryptor(true),
      job: rawJob('stripped', ciphertext),
    },
    {
      case: 'a decrypted body that is not JSON',
      reason: 'not-json',
      decryptor: toyDecryptor(),
      job: rawJob('not-json', toySeal(Buffer.from('{"text":')), SEALED),
    },
  ])('dead-letters $case as $reason, unhandled and byte for byte', async (scenario) => {
    handled.length = 0;
    const { broker, consumer } = await startConsumer(
      scenario.decryptor === undefined ? {} : { decryptor: scenario.decryptor },
    );
    broker.inject(scenario.job.body, scenario.job.properties);
    const id = scenario.job.properties.messageId!;
    await waitFor(() => deadLetterOf(broker, id) !== undefined);
    await consumer.stop();

    const letter = deadLetterOf(broker, id)!;
    expect(letter.body).toEqual(scenario.job.body);
    expect(letter.properties.headers).toMatchObject({
      ...scenario.job.properties.headers,
      [HEADERS.reason]: scenario.reason,
      [HEADERS.errorCode]:
        scenario.reason === 'not-json' ? 'WARREN_MALFORMED_MESSAGE' : 'WARREN_DECRYPTION_REFUSED',
    });
    expect(String(letter.properties.headers![HEADERS.errorMessage])).not.toContain('secret');
    expect(handled).toEqual([]);
    expect(broker.to('warren.results')).toEqual([]);
  });

  it('checks the signature before decrypting, and decrypts nothing it refuses', async () => {
    const decryptor = toyDecryptor();
    const verifier: JobVerifier = {
      verify: () => ({ accepted: false, reason: 'bad-signature', message: 'forged' }),
    };
    const { broker, consumer } = await startConsumer({ decryptor, verifier });
    const job = rawJob('forged', ciphertext, SEALED);
    broker.inject(job.body, job.properties);
    await waitFor(() => deadLetterOf(broker, 'forged') !== undefined);
    await consumer.stop();

    expect(deadLetterOf(broker, 'forged')!.properties.headers![HEADERS.reason]).toBe(
      'bad-signature',
    );
    expect(decryptor.calls).toBe(0);
  });

  it('decrypts nothing for a scope the consumer is not cleared for', async () => {
    const decryptor = toyDecryptor();
    const { broker, consumer } = await startConsumer({ decryptor });
    const job = rawJob('restricted', ciphertext, { ...SEALED, [HEADERS.scope]: 'restricted' });
    broker.inject(job.body, job.properties);
    await waitFor(() => deadLetterOf(broker, 'restricted') !== undefined);
    await consumer.stop();

    expect(deadLetterOf(broker, 'restricted')!.properties.headers![HEADERS.reason]).toBe(
      'scope-not-cleared',
    );
    expect(decryptor.calls).toBe(0);
  });

  it('waits for a decryptor that answers asynchronously', async () => {
    handled.length = 0;
    const decryptor: BodyDecryptor = {
      decrypt: async (delivery) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return toyDecrypt(delivery);
      },
    };
    const { broker, consumer } = await startConsumer({ decryptor });
    const job = rawJob('async', toySeal(Buffer.from('{"text":"later"}')), SEALED);
    broker.inject(job.body, job.properties);
    await waitFor(() => consumer.counts.succeeded === 1);
    await consumer.stop();

    expect(handled).toEqual(['later']);
  });

  it('retries a job whose decryptor failed, as not the job’s fault', async () => {
    let calls = 0;
    const decryptor: BodyDecryptor = {
      decrypt: () => {
        calls += 1;
        throw new Error('key service unreachable');
      },
    };
    const { broker, consumer } = await startConsumer({ decryptor });
    const job = rawJob('unreachable', ciphertext, SEALED);
    broker.inject(job.body, job.properties);
    await waitFor(() => deadLetterOf(broker, 'unreachable') !== undefined);
    await consumer.stop();

    expect(calls).toBe(2);
    expect(deadLetterOf(broker, 'unreachable')!.properties.headers).toMatchObject({
      [HEADERS.reason]: 'handler-failed',
      [HEADERS.errorMessage]: 'decrypting failed: key service unreachable',
    });
    expect(deadLetterOf(broker, 'unreachable')!.body).toEqual(ciphertext);
  });
});
