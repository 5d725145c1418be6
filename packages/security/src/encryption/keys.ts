import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { ConfigError, describeIssues } from '@warren/core';
import { z } from 'zod';
import { ENCRYPTION_ALGORITHM, type EncryptionAlgorithm, IV_BYTES, TAG_BYTES } from './format.ts';

/**
 * One AES-256-GCM key, named by the id that travels in `x-warren-encryption-key-id`. Its secret
 * stays inside: the object can be logged or inspected without showing it.
 */
export interface EncryptionKey {
  readonly id: string;
  readonly alg: EncryptionAlgorithm;
  /** Encrypts under a fresh random IV: `iv || ciphertext || tag`. */
  seal(plaintext: Buffer, associatedData: Buffer): Buffer;
  /**
   * The plaintext of `iv || ciphertext || tag`, or undefined when it does not authenticate with
   * this key and `associatedData` (or is too short to hold an IV and a tag).
   */
  open(sealed: Buffer, associatedData: Buffer): Buffer | undefined;
}

const KEY_BYTES = 32;

/** Key ids as signing keys have them (docs/signing.md). */
const KEY_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

const keyId = z.string().regex(KEY_ID_PATTERN, {
  message: "expected 1 to 128 letters, digits, '.', '_', ':' or '-'",
});

/** The JSON an encryption key file (a mounted secret) or environment variable holds. */
const keyFileSchema = z
  .object({
    keys: z
      .array(
        z
          .object({
            id: keyId,
            alg: z.literal(ENCRYPTION_ALGORITHM),
            secret: z.string().regex(/^[A-Za-z0-9+/_-]+={0,2}$/, { message: 'expected base64' }),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export type EncryptionKeyFile = z.input<typeof keyFileSchema>;

/** Whether `id` could name a key: checked before an id from a message is looked up or quoted. */
export function isKeyId(id: string): boolean {
  return KEY_ID_PATTERN.test(id);
}

/**
 * The encryption keys a worker opens bodies with, by id. During a rotation it holds the old key
 * and the new one: bodies sealed with either open, producers move to the new id, and the old key
 * is removed once no job sealed with it can still be in a queue or a dead letter you will replay.
 */
export class EncryptionKeySet {
  readonly #keys: Map<string, EncryptionKey>;

  constructor(keys: Iterable<EncryptionKey>) {
    this.#keys = new Map();
    for (const key of keys) {
      if (this.#keys.has(key.id)) throw new ConfigError(`encryption key id ${key.id}: given twice`);
      this.#keys.set(key.id, key);
    }
  }

  /**
   * Reads a key set from JSON (`{"keys": [{"id", "alg": "aes-256-gcm", "secret"}]}`, each secret
   * 32 bytes in base64). `source` names where it came from in errors; no error quotes a key.
   */
  static fromJson(text: string, source: string): EncryptionKeySet {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw new ConfigError(`${source}: expected JSON, found text that does not parse`, { cause });
    }
    const parsed = keyFileSchema.safeParse(value);
    if (!parsed.success) throw new ConfigError(describeIssues(parsed.error, { root: source }));
    return new EncryptionKeySet(
      parsed.data.keys.map((entry, index) => {
        const secret = decode(entry.secret);
        try {
          return aesKey(entry.id, secret, `${source}.keys[${index}]`);
        } finally {
          // The key object holds its own copy; this one need not linger in the heap.
          secret.fill(0);
        }
      }),
    );
  }

  get(id: string): EncryptionKey | undefined {
    return this.#keys.get(id);
  }

  get ids(): string[] {
    return [...this.#keys.keys()];
  }
}

/** An AES-256-GCM key from its 32 secret bytes (the bytes are copied). */
export function aesKey(id: string, secret: Buffer, where = `encryption key ${id}`): EncryptionKey {
  if (!isKeyId(id)) {
    throw new ConfigError(
      `${where}.id: expected 1 to 128 letters, digits, '.', '_', ':' or '-', found ${JSON.stringify(id.slice(0, 140))}`,
    );
  }
  if (secret.length !== KEY_BYTES) {
    throw new ConfigError(`${where}.secret: expected ${KEY_BYTES} bytes, found ${secret.length}`);
  }
  const key = createSecretKey(Buffer.from(secret));
  return {
    id,
    alg: ENCRYPTION_ALGORITHM,
    seal: (plaintext, associatedData) => seal(key, plaintext, associatedData),
    open: (sealed, associatedData) => open(key, sealed, associatedData),
  };
}

function seal(key: KeyObject, plaintext: Buffer, associatedData: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ENCRYPTION_ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]);
}

function open(key: KeyObject, sealed: Buffer, associatedData: Buffer): Buffer | undefined {
  if (sealed.length < IV_BYTES + TAG_BYTES) return undefined;
  const iv = sealed.subarray(0, IV_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv(ENCRYPTION_ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(associatedData);
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([plaintext, decipher.final()]);
  } catch {
    // The tag did not match: nothing decrypted may be used, so none of it is kept.
    plaintext.fill(0);
    return undefined;
  }
}

function decode(text: string): Buffer {
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}
