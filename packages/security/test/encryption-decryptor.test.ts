import { createHash, randomBytes } from 'node:crypto';
import {
  type Decryption,
  type Delivery,
  encodeJob,
  HEADERS,
  type MessageProperties,
} from '@warren/core';
import { describe, expect, it } from 'vitest';
import {
  AesGcmDecryptor,
  aesKey,
  associatedData,
  createEncryptor,
  type EncryptionKey,
  EncryptionKeySet,
  IV_BYTES,
  sealBody,
  TAG_BYTES,
} from '../src/index.ts';

interface Message {
  body: Buffer;
  properties: MessageProperties;
}

const PLAINTEXT = Buffer.from('{"text":"the secret plan"}');

function newKey(id: string): EncryptionKey {
  return aesKey(id, randomBytes(32));
}

/** A job as `JobPublisher` builds it, sealed with `key`. */
function sealed(key: EncryptionKey, overrides: Partial<MessageProperties> = {}): Message {
  const job = encodeJob({
    modelType: 'echo',
    tenant: 'acme',
    scope: 'restricted',
    input: JSON.parse(PLAINTEXT.toString()),
    messageId: `job-${randomBytes(4).toString('hex')}`,
    replyTo: 'replies.acme',
  });
  const properties = { ...job.properties, ...overrides };
  const { body, headers } = sealBody(key, job.body, properties);
  return { body, properties: { ...properties, headers: { ...properties.headers, ...headers } } };
}

function delivery(message: Message): Delivery {
  return {
    ...message,
    exchange: 'warren.jobs',
    routingKey: 'echo.restricted',
    redelivered: false,
    deliveryTag: 1,
    queue: 'warren.jobs.echo:restricted',
  };
}

function withHeaders(message: Message, headers: MessageProperties['headers']): Message {
  return {
    ...message,
    properties: { ...message.properties, headers: { ...message.properties.headers, ...headers } },
  };
}

function open(keys: EncryptionKey[], message: Message): Decryption {
  return new AesGcmDecryptor({ keys: new EncryptionKeySet(keys) }).decrypt(delivery(message));
}

function reasonOf(decryption: Decryption): string | undefined {
  return decryption.decrypted ? undefined : decryption.reason;
}

describe('sealing and opening job bodies', () => {
  it('opens what it sealed, and names the key', () => {
    const key = newKey('k1');
    const message = sealed(key);

    expect(open([key], message)).toEqual({ decrypted: true, plaintext: PLAINTEXT, keyId: 'k1' });
  });

  it('sends iv || ciphertext || tag with the algorithm and key id beside it', () => {
    const key = newKey('k1');
    const message = sealed(key);

    expect(message.body).toHaveLength(IV_BYTES + PLAINTEXT.length + TAG_BYTES);
    expect(message.body.includes(Buffer.from('secret'))).toBe(false);
    expect(message.properties.headers).toMatchObject({
      [HEADERS.encryption]: 'aes-256-gcm',
      [HEADERS.encryptionKeyId]: 'k1',
    });
    // The content type stays the plaintext's: the worker decodes it once decrypted.
    expect(message.properties.contentType).toBe('application/json');
  });

  it('draws a fresh IV for every message, so the same job never seals the same twice', async () => {
    const key = newKey('k1');
    const job = encodeJob({ modelType: 'echo', tenant: 'acme', input: { a: 1 }, messageId: 'm' });
    const encryptor = createEncryptor(key);
    const bodies: Buffer[] = [];
    for (let i = 0; i < 2_000; i += 1)
      bodies.push((await encryptor.encrypt(job.body, job.properties)).body);

    const ivs = new Set(bodies.map((body) => body.subarray(0, IV_BYTES).toString('hex')));
    expect(ivs.size).toBe(bodies.length);
    expect(new Set(bodies.map((body) => body.toString('hex'))).size).toBe(bodies.length);
  });

  it('opens a job sealed with either key of a rotation, and not once the old key is gone', () => {
    const old = newKey('2025-old');
    const fresh = newKey('2026-new');
    const byOld = sealed(old);
    const byNew = sealed(fresh);

    expect(open([old, fresh], byOld).decrypted).toBe(true);
    expect(open([old, fresh], byNew).decrypted).toBe(true);
    expect(reasonOf(open([fresh], byOld))).toBe('unknown-encryption-key');
  });

  it('opens the published test vector (docs/encryption.md)', () => {
    const key = aesKey(
      'vector-aes-1',
      createHash('sha256').update('warren-test-vector-aes-256-gcm').digest(),
    );
    const properties: MessageProperties = {
      messageId: 'job-0001',
      contentType: 'application/json',
      replyTo: 'replies.acme',
      priority: 5,
      headers: {
        [HEADERS.tenant]: 'acme',
        [HEADERS.scope]: 'restricted',
        [HEADERS.modelType]: 'feature-extraction',
        [HEADERS.deadline]: 1767225600000,
        [HEADERS.createdAt]: 1767225000000,
        [HEADERS.encryption]: 'aes-256-gcm',
        [HEADERS.encryptionKeyId]: 'vector-aes-1',
      },
    };
    expect(associatedData(properties, 'aes-256-gcm', 'vector-aes-1').toString('hex')).toBe(
      '010000001477617272656e2d656e6372797074696f6e2d7631010000000b6165732d3235362d67636d01000000' +
        '0c766563746f722d6165732d3101000000086a6f622d30303031010000000461636d65010000000a7265737472' +
        '6963746564010000001266656174757265' +
        '2d65787472616374696f6e01000000106170706c69636174696f6e2f6a736f6e010000000c7265706c6965732e' +
        '61636d65',
    );
    const body = Buffer.from(
      'O9RDd31lCaPB6ANjv97DiKSDiGHEUwpuopl/IiU5g3u3Is99LypvbMcwcPo=',
      'base64',
    );

    expect(open([key], { body, properties })).toEqual({
      decrypted: true,
      plaintext: Buffer.from('{"text":"hello"}'),
      keyId: 'vector-aes-1',
    });
  });
});

describe('what the ciphertext is bound to', () => {
  const key = newKey('k1');

  it.each([
    { field: 'message id', change: { messageId: 'another-job' } },
    { field: 'reply to', change: { replyTo: 'replies.mallory' } },
    { field: 'content type', change: { contentType: 'application/json; charset=utf-8' } },
  ])('refuses a body moved to another $field', ({ change }) => {
    const message = sealed(key);
    const moved = { ...message, properties: { ...message.properties, ...change } };

    expect(reasonOf(open([key], moved))).toBe('decryption-failed');
  });

  it.each([
    { field: 'tenant', header: HEADERS.tenant, value: 'globex' },
    { field: 'scope', header: HEADERS.scope, value: 'public' },
    { field: 'model type', header: HEADERS.modelType, value: 'other-model' },
  ])('refuses a body moved to another $field', ({ header, value }) => {
    expect(reasonOf(open([key], withHeaders(sealed(key), { [header]: value })))).toBe(
      'decryption-failed',
    );
  });

  it('refuses the body of one job put in another real job’s place', () => {
    const first = sealed(key);
    const second = sealed(key);

    expect(reasonOf(open([key], { ...second, body: first.body }))).toBe('decryption-failed');
  });

  it('reads a bound header sent as bytes as its UTF-8 text, as signing does', () => {
    const message = sealed(key);
    const asBytes = withHeaders(message, {
      [HEADERS.tenant]: Buffer.from('acme') as unknown as string,
    });

    expect(open([key], asBytes).decrypted).toBe(true);
  });

  it('binds neither the attempt nor the deadline, which retries and producers may set', () => {
    const message = withHeaders(sealed(key), { [HEADERS.attempt]: 3 });

    expect(open([key], message).decrypted).toBe(true);
  });
});

describe('refusals', () => {
  const key = newKey('k1');

  it('refuses a changed byte anywhere: IV, ciphertext or tag', () => {
    const message = sealed(key);
    for (const at of [0, IV_BYTES + 2, message.body.length - 1]) {
      const body = Buffer.from(message.body);
      body[at] = body[at]! ^ 0x01;
      expect(reasonOf(open([key], { ...message, body })), `byte ${at}`).toBe('decryption-failed');
    }
  });

  it('refuses a body sealed with another key under the same id', () => {
    const impostor = newKey('k1');

    expect(reasonOf(open([key], sealed(impostor)))).toBe('decryption-failed');
  });

  it('refuses a key id it does not hold, naming it', () => {
    const decryption = open([key], sealed(newKey('stranger')));

    expect(decryption).toMatchObject({
      decrypted: false,
      reason: 'unknown-encryption-key',
      message: 'key id stranger is not in the encryption key set',
      keyId: 'stranger',
    });
  });

  it('refuses a body too short to hold an IV and a tag', () => {
    const message = { ...sealed(key), body: Buffer.alloc(IV_BYTES + TAG_BYTES - 1) };

    expect(open([key], message)).toMatchObject({
      decrypted: false,
      reason: 'malformed-encryption',
      message: `expected at least ${IV_BYTES + TAG_BYTES} bytes (IV and tag), found 27`,
    });
  });

  it.each([
    { case: 'no key id', headers: { [HEADERS.encryptionKeyId]: undefined } },
    { case: 'a key id that is not one', headers: { [HEADERS.encryptionKeyId]: 'k1 k2' } },
  ])('refuses $case as malformed', ({ headers }) => {
    expect(reasonOf(open([key], withHeaders(sealed(key), headers)))).toBe('malformed-encryption');
  });

  it('refuses an algorithm other than AES-256-GCM', () => {
    const message = withHeaders(sealed(key), { [HEADERS.encryption]: 'rot13' });

    expect(open([key], message)).toMatchObject({
      decrypted: false,
      reason: 'unsupported-encryption',
      message: 'x-warren-encryption: expected aes-256-gcm, found "rot13"',
    });
  });

  it('says nothing of the plaintext in a refusal, though the cipher produced it before the tag', () => {
    // A changed tag: GCM decrypts the ciphertext before it checks the tag, so the plaintext
    // existed for a moment; none of it may reach the refusal.
    const message = sealed(key);
    const body = Buffer.from(message.body);
    body[body.length - 1] = body[body.length - 1]! ^ 0x80;
    const decryption = open([key], { ...message, body });

    expect(decryption.decrypted).toBe(false);
    expect(JSON.stringify(decryption)).not.toContain('secret plan');
  });

  it('is not required by default, and says so when asked to be', () => {
    const keys = new EncryptionKeySet([key]);
    expect(new AesGcmDecryptor({ keys }).required).toBe(false);
    expect(new AesGcmDecryptor({ keys, required: true }).required).toBe(true);
  });
});
