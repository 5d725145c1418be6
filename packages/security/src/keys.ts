import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { ConfigError } from '@warren/core';
import { z } from 'zod';
import type { Algorithm } from './canonical.ts';
import {
  base64Schema,
  decodeBase64 as decode,
  KeyRing,
  keyIdSchema,
  parseKeyFile,
} from './key-files.ts';

/** One key, named by the id that travels in `x-warren-key-id`. */
export interface SigningKey {
  readonly id: string;
  readonly alg: Algorithm;
  /** Signs canonical bytes; throws for an Ed25519 key that holds only the public half. */
  sign(data: Buffer): Buffer;
  /** Whether `signature` is this key's over `data`, in constant time for HMAC. */
  verify(data: Buffer, signature: Buffer): boolean;
  /** Whether this key can sign (HMAC keys and Ed25519 keys with their private half). */
  readonly canSign: boolean;
}

const MIN_HMAC_BYTES = 32;

/** The JSON a key file (a mounted secret) or environment variable holds. */
const keyFileSchema = z
  .object({
    keys: z
      .array(
        z.discriminatedUnion('alg', [
          z
            .object({ id: keyIdSchema, alg: z.literal('hmac-sha256'), secret: base64Schema })
            .strict(),
          z
            .object({
              id: keyIdSchema,
              alg: z.literal('ed25519'),
              publicKey: base64Schema,
              privateKey: base64Schema.optional(),
            })
            .strict(),
        ]),
      )
      .min(1),
  })
  .strict();

export type KeyFile = z.input<typeof keyFileSchema>;

/**
 * The keys a worker accepts or a producer signs with, by id. During a rotation it holds the old
 * key and the new one: jobs signed with either verify, producers move to the new id, and the old
 * key is removed once no job signed with it can still be in a queue.
 */
export class KeySet extends KeyRing<SigningKey> {
  constructor(keys: Iterable<SigningKey>) {
    super(keys, 'key');
  }

  /**
   * Reads a key set from JSON (`{"keys": [{"id", "alg", "secret" | "publicKey", "privateKey"?}]}`,
   * secrets and Ed25519 keys base64: HMAC secrets of at least 32 bytes, Ed25519 keys raw 32-byte).
   * `source` names where it came from in errors; no error quotes a key.
   */
  static fromJson(text: string, source: string): KeySet {
    const { keys } = parseKeyFile(text, source, keyFileSchema);
    return new KeySet(
      keys.map((entry, index) => {
        const where = `${source}.keys[${index}]`;
        return entry.alg === 'hmac-sha256'
          ? hmacKey(entry.id, decode(entry.secret), where)
          : ed25519Key(
              entry.id,
              decode(entry.publicKey),
              entry.privateKey === undefined ? undefined : decode(entry.privateKey),
              where,
            );
      }),
    );
  }
}

/** An HMAC-SHA256 key from its secret bytes (at least 32). */
export function hmacKey(id: string, secret: Buffer, where = `key ${id}`): SigningKey {
  if (secret.length < MIN_HMAC_BYTES) {
    throw new ConfigError(
      `${where}.secret: expected at least ${MIN_HMAC_BYTES} bytes, found ${secret.length}`,
    );
  }
  const mac = (data: Buffer) => createHmac('sha256', secret).update(data).digest();
  return {
    id,
    alg: 'hmac-sha256',
    canSign: true,
    sign: mac,
    verify: (data, signature) => {
      const expected = mac(data);
      return signature.length === expected.length && timingSafeEqual(signature, expected);
    },
  };
}

/**
 * An Ed25519 key from its raw 32-byte public key and, to sign, its raw 32-byte private key (the
 * seed), the forms RFC 8032 and most libraries print.
 */
export function ed25519Key(
  id: string,
  publicKey: Buffer,
  privateKey?: Buffer,
  where = `key ${id}`,
): SigningKey {
  const x = raw32(publicKey, `${where}.publicKey`).toString('base64url');
  const publicObject = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  let privateObject: KeyObject | undefined;
  if (privateKey !== undefined) {
    const d = raw32(privateKey, `${where}.privateKey`).toString('base64url');
    privateObject = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x, d }, format: 'jwk' });
    // A private key that is not the public key's half would sign what nobody can verify.
    const probe = Buffer.from('warren key check');
    if (!verify(null, probe, publicObject, sign(null, probe, privateObject))) {
      throw new ConfigError(`${where}: privateKey does not match publicKey`);
    }
  }
  return {
    id,
    alg: 'ed25519',
    canSign: privateObject !== undefined,
    sign: (data) => {
      if (privateObject === undefined) {
        throw new ConfigError(`${where}: holds no privateKey, so it cannot sign`);
      }
      return sign(null, data, privateObject);
    },
    verify: (data, signature) =>
      signature.length === 64 && verify(null, data, publicObject, signature),
  };
}

function raw32(bytes: Buffer, where: string): Buffer {
  if (bytes.length !== 32)
    throw new ConfigError(`${where}: expected 32 bytes, found ${bytes.length}`);
  return bytes;
}
