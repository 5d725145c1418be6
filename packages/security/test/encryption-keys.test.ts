import { randomBytes } from 'node:crypto';
import { ConfigError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { aesKey, EncryptionKeySet } from '../src/index.ts';

function keyFile(...keys: Array<Record<string, unknown>>): string {
  return JSON.stringify({ keys });
}

function secret(bytes = 32): string {
  return randomBytes(bytes).toString('base64');
}

describe('encryption key sets', () => {
  it('reads several keys, for a rotation, in base64 or base64url', () => {
    const raw = randomBytes(32);
    const keys = EncryptionKeySet.fromJson(
      keyFile(
        { id: 'old', alg: 'aes-256-gcm', secret: secret() },
        { id: 'new', alg: 'aes-256-gcm', secret: raw.toString('base64url') },
      ),
      'key file k.json',
    );

    expect(keys.ids).toEqual(['old', 'new']);
    // The url-safe secret reads as the same key: what it seals, the raw bytes open.
    const sealed = keys.get('new')!.seal(Buffer.from('x'), Buffer.alloc(0));
    expect(aesKey('new', raw).open(sealed, Buffer.alloc(0))).toEqual(Buffer.from('x'));
  });

  it.each([
    {
      case: 'a secret of the wrong length',
      text: keyFile({ id: 'k', alg: 'aes-256-gcm', secret: secret(16) }),
      error: 'key file k.json.keys[0].secret: expected 32 bytes, found 16',
    },
    {
      case: 'another algorithm',
      text: keyFile({ id: 'k', alg: 'aes-128-gcm', secret: secret() }),
      error: 'key file k.json.keys[0].alg',
    },
    {
      case: 'a key id with a space',
      text: keyFile({ id: 'my key', alg: 'aes-256-gcm', secret: secret() }),
      error: "key file k.json.keys[0].id: expected 1 to 128 letters, digits, '.', '_', ':' or '-'",
    },
    {
      case: 'an unknown field',
      text: keyFile({ id: 'k', alg: 'aes-256-gcm', secret: secret(), publicKey: 'x' }),
      error: 'key file k.json.keys[0]',
    },
    {
      case: 'no keys',
      text: keyFile(),
      error: 'key file k.json.keys',
    },
    {
      case: 'an id given twice',
      text: keyFile(
        { id: 'k', alg: 'aes-256-gcm', secret: secret() },
        { id: 'k', alg: 'aes-256-gcm', secret: secret() },
      ),
      error: 'encryption key id k: given twice',
    },
    {
      case: 'text that is not JSON',
      text: '{"keys": [',
      error: 'key file k.json: expected JSON, found text that does not parse',
    },
  ])('refuses $case, naming the field', ({ text, error }) => {
    expect(() => EncryptionKeySet.fromJson(text, 'key file k.json')).toThrow(ConfigError);
    expect(() => EncryptionKeySet.fromJson(text, 'key file k.json')).toThrow(error);
  });

  it('never quotes a secret in its errors', () => {
    const short = secret(31);
    const text = keyFile({ id: 'k', alg: 'aes-256-gcm', secret: short });
    expect(() => EncryptionKeySet.fromJson(text, 'env')).toThrow(/expected 32 bytes, found 31/);
    try {
      EncryptionKeySet.fromJson(text, 'env');
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(short);
    }
  });

  it('keeps the secret out of the key object, so logging a key shows none of it', () => {
    const raw = randomBytes(32);
    const key = aesKey('k', raw);
    const shown = JSON.stringify(key) + String(Object.values(key));
    expect(shown).not.toContain(raw.toString('base64'));
    expect(shown).not.toContain(raw.toString('hex'));
    expect(Object.keys(key).sort()).toEqual(['alg', 'id', 'open', 'seal']);
  });
});
