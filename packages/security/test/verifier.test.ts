import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { Delivery, MessageProperties, Verdict } from '@warren/core';
import { describe, expect, it } from 'vitest';
import {
  ed25519Key,
  hmacKey,
  KeySet,
  MemoryReplayGuard,
  SignatureVerifier,
  type SigningKey,
  signatureHeaders,
} from '../src/index.ts';

const NOW = 1_800_000_000_000;

function newHmac(id: string): SigningKey {
  return hmacKey(id, randomBytes(32));
}

function newEd25519(id: string): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const key = ed25519Key(id, x, d);
  halves.set(key, { publicKey: x.toString('base64'), privateKey: d.toString('base64') });
  return key;
}

function job(overrides: Partial<MessageProperties> = {}): {
  body: Buffer;
  properties: MessageProperties;
} {
  return {
    body: Buffer.from('{"text":"hi"}'),
    properties: {
      messageId: `job-${randomBytes(4).toString('hex')}`,
      contentType: 'application/json',
      priority: 0,
      ...overrides,
      headers: {
        'x-warren-tenant': 'acme',
        'x-warren-scope': 'public',
        'x-warren-model-type': 'echo',
        'x-warren-created-at': NOW - 1_000,
        'x-warren-attempt': 1,
        ...overrides.headers,
      },
    },
  };
}

function signed(
  key: SigningKey,
  unsigned = job(),
): { body: Buffer; properties: MessageProperties } {
  const headers = signatureHeaders(key, unsigned.body, unsigned.properties);
  return {
    body: unsigned.body,
    properties: { ...unsigned.properties, headers: { ...unsigned.properties.headers, ...headers } },
  };
}

function delivery(
  message: { body: Buffer; properties: MessageProperties },
  redelivered = false,
): Delivery {
  return {
    ...message,
    exchange: 'warren.jobs',
    routingKey: 'echo.public',
    redelivered,
    deliveryTag: 1,
    queue: 'warren.jobs.echo',
  };
}

function refusal(verdict: Verdict): string | undefined {
  return verdict.accepted ? undefined : verdict.reason;
}

describe('the signature verifier', () => {
  const key = newHmac('hmac-2026-01');
  const verifier = () =>
    new SignatureVerifier({ keys: new KeySet([key]), now: () => NOW, windowMs: 60_000 });

  it('accepts a job signed with a key in the set, naming the key', async () => {
    expect(await verifier().verify(delivery(signed(key)))).toEqual({
      accepted: true,
      keyId: 'hmac-2026-01',
    });
  });

  it('accepts Ed25519 signatures with the public key only', async () => {
    const pair = newEd25519('ed-1');
    const publicOnly = KeySet.fromJson(
      JSON.stringify({
        keys: [{ id: 'ed-1', alg: 'ed25519', publicKey: publicHalf(pair) }],
      }),
      'keys',
    );
    const check = new SignatureVerifier({ keys: publicOnly, now: () => NOW });

    expect(await check.verify(delivery(signed(pair)))).toMatchObject({ accepted: true });
  });

  it('refuses an unsigned job as unsigned, or lets it through when signing is not required', async () => {
    expect(refusal(await verifier().verify(delivery(job())))).toBe('unsigned');
    const lenient = new SignatureVerifier({ keys: new KeySet([key]), required: false });
    expect(await lenient.verify(delivery(job()))).toEqual({ accepted: true });
  });

  it('refuses a key id that is not in the set as unknown-key', async () => {
    expect(refusal(await verifier().verify(delivery(signed(newHmac('elsewhere')))))).toBe(
      'unknown-key',
    );
  });

  it('refuses an algorithm the worker does not allow', async () => {
    const pair = newEd25519('ed-1');
    const check = new SignatureVerifier({
      keys: new KeySet([pair]),
      algorithms: ['hmac-sha256'],
      now: () => NOW,
    });
    expect(refusal(await check.verify(delivery(signed(pair))))).toBe('algorithm-not-allowed');
  });

  it('refuses a tampered body as bad-signature', async () => {
    const message = signed(key);
    const tampered = { ...message, body: Buffer.from('{"text":"ho"}') };
    expect(refusal(await verifier().verify(delivery(tampered)))).toBe('bad-signature');
  });

  it.each([
    ['x-warren-tenant', 'globex'],
    ['x-warren-scope', 'restricted'],
    ['x-warren-model-type', 'other'],
    ['x-warren-deadline', NOW + 5],
    ['x-warren-created-at', NOW],
    ['x-warren-key-id', 'hmac-2026-01 '],
  ])('refuses a job whose %s header was changed as bad-signature', async (header, value) => {
    const message = signed(key);
    const headers = { ...message.properties.headers, [header]: value };
    const verdict = await verifier().verify(
      delivery({ ...message, properties: { ...message.properties, headers } }),
    );
    expect(refusal(verdict)).toBe(header === 'x-warren-key-id' ? 'unknown-key' : 'bad-signature');
  });

  it.each([
    ['messageId', 'another-id'],
    ['priority', 9],
    ['replyTo', 'attacker.queue'],
    ['contentType', 'text/plain'],
  ])('refuses a job whose %s property was changed as bad-signature', async (property, value) => {
    const message = signed(key);
    const properties = { ...message.properties, [property]: value };
    expect(refusal(await verifier().verify(delivery({ ...message, properties })))).toBe(
      'bad-signature',
    );
  });

  it('refuses a signature made with another key of the same id', async () => {
    expect(refusal(await verifier().verify(delivery(signed(newHmac('hmac-2026-01')))))).toBe(
      'bad-signature',
    );
  });

  it('refuses a first delivery signed outside the window, either way, as stale', async () => {
    const old = signed(key, job({ headers: { 'x-warren-created-at': NOW - 61_000 } }));
    const ahead = signed(key, job({ headers: { 'x-warren-created-at': NOW + 61_000 } }));
    const undated = signed(key, job({ headers: { 'x-warren-created-at': undefined } }));

    expect(refusal(await verifier().verify(delivery(old)))).toBe('stale');
    expect(refusal(await verifier().verify(delivery(ahead)))).toBe('stale');
    expect(refusal(await verifier().verify(delivery(undated)))).toBe('stale');
  });

  it('refuses a message id it accepted already as replayed, but not a redelivery or a retry', async () => {
    const check = new SignatureVerifier({
      keys: new KeySet([key]),
      now: () => NOW,
      windowMs: 60_000,
      relays: ['worker'],
    });
    const message = signed(key);
    const retried = (userId?: string) => ({
      ...message,
      properties: {
        ...message.properties,
        ...(userId === undefined ? {} : { userId }),
        headers: { ...message.properties.headers, 'x-warren-attempt': 2 },
      },
    });

    expect(await check.verify(delivery(message))).toMatchObject({ accepted: true });
    expect(refusal(await check.verify(delivery(message)))).toBe('replayed');
    expect(await check.verify(delivery(message, true))).toMatchObject({ accepted: true });
    // A retry a worker account republished (the broker checked its user_id) ...
    expect(await check.verify(delivery(retried('worker')))).toMatchObject({ accepted: true });
    // ... but not the same bytes resent by anyone else claiming a second attempt.
    expect(refusal(await check.verify(delivery(retried())))).toBe('replayed');
    expect(refusal(await check.verify(delivery(retried('producer'))))).toBe('replayed');
  });

  it('checks a relay’s retry of a job whose verification failed as a first delivery', async () => {
    const check = new SignatureVerifier({
      keys: new KeySet([key]),
      now: () => NOW,
      windowMs: 60_000,
      relays: ['worker'],
    });
    const message = signed(key);
    const unverifiedRetry = {
      ...message,
      properties: {
        ...message.properties,
        userId: 'worker',
        headers: {
          ...message.properties.headers,
          'x-warren-attempt': 2,
          'x-warren-unverified': true,
        },
      },
    };

    // Never admitted before (the replay store was down): admitted now, and remembered ...
    expect(await check.verify(delivery(unverifiedRetry))).toMatchObject({ accepted: true });
    // ... so the other copies that failed the same way are replays ...
    expect(refusal(await check.verify(delivery(unverifiedRetry)))).toBe('replayed');
    // ... while the broker's redelivery of the admitted copy (after a crash, say) is not.
    expect(await check.verify(delivery(unverifiedRetry, true))).toMatchObject({ accepted: true });
  });

  it('does not remember the ids of forged jobs', async () => {
    const check = verifier();
    const message = signed(key);
    const forged = { ...message, body: Buffer.from('{"text":"forged"}') };

    expect(refusal(await check.verify(delivery(forged)))).toBe('bad-signature');
    expect(await check.verify(delivery(message))).toMatchObject({ accepted: true });
  });

  it('accepts jobs signed with the old key and the new one while both are in the set', async () => {
    const old = newHmac('2026-01');
    const fresh = newEd25519('2026-02');
    const check = new SignatureVerifier({ keys: new KeySet([old, fresh]), now: () => NOW });

    expect(await check.verify(delivery(signed(old)))).toEqual({ accepted: true, keyId: '2026-01' });
    expect(await check.verify(delivery(signed(fresh)))).toEqual({
      accepted: true,
      keyId: '2026-02',
    });
    const retired = new SignatureVerifier({ keys: new KeySet([fresh]), now: () => NOW });
    expect(refusal(await retired.verify(delivery(signed(old))))).toBe('unknown-key');
  });

  it('tells its listener every decision', async () => {
    const seen: Verdict[] = [];
    const check = new SignatureVerifier({
      keys: new KeySet([key]),
      now: () => NOW,
      onDecision: (_delivery, verdict) => seen.push(verdict),
    });
    await check.verify(delivery(signed(key)));
    await check.verify(delivery(job()));

    expect(seen.map((verdict) => verdict.accepted)).toEqual([true, false]);
  });
});

describe('the memory replay guard', () => {
  it('forgets ids once they expire, and the oldest past its bound', () => {
    const guard = new MemoryReplayGuard({ maxEntries: 2 });

    expect(guard.seen('a', 100, 0)).toBe(false);
    expect(guard.seen('a', 100, 50)).toBe(true);
    expect(guard.seen('a', 200, 100)).toBe(false);
    guard.seen('b', 300, 100);
    guard.seen('c', 300, 100);
    expect(guard.size).toBe(2);
    expect(guard.seen('a', 300, 100)).toBe(false);
  });
});

describe('key sets', () => {
  it('reads HMAC and Ed25519 keys from JSON and refuses short secrets without quoting them', () => {
    const short = Buffer.alloc(16, 7).toString('base64');
    const read = () =>
      KeySet.fromJson(
        JSON.stringify({ keys: [{ id: 'k', alg: 'hmac-sha256', secret: short }] }),
        'WARREN_SIGNING_KEYS',
      );

    expect(read).toThrow(
      'WARREN_SIGNING_KEYS.keys[0].secret: expected at least 32 bytes, found 16',
    );
    expect(read).not.toThrow(short);
  });

  it('refuses an id given twice and an Ed25519 private key that is not the public key’s half', () => {
    const a = newEd25519('a');
    const b = newEd25519('b');
    const mismatched = JSON.stringify({
      keys: [{ id: 'a', alg: 'ed25519', publicKey: publicHalf(a), privateKey: privateHalf(b) }],
    });
    expect(() => new KeySet([a, a])).toThrow('key id a: given twice');
    expect(() => KeySet.fromJson(mismatched, 'keys')).toThrow('privateKey does not match');
  });
});

/** Ed25519 test keys keep their halves here, so the tests can write key files from them. */
const halves = new WeakMap<SigningKey, { publicKey: string; privateKey: string }>();

function publicHalf(key: SigningKey): string {
  return halvesOf(key).publicKey;
}

function privateHalf(key: SigningKey): string {
  return halvesOf(key).privateKey;
}

function halvesOf(key: SigningKey): { publicKey: string; privateKey: string } {
  const found = halves.get(key);
  if (found === undefined) throw new Error(`no halves recorded for ${key.id}`);
  return found;
}
