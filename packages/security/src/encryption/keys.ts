import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { ConfigError } from '@warren/core';
import { z } from 'zod';
import {
  base64Schema,
  decodeBase64 as decode,
  isKeyId,
  KEY_ID_RULE,
  KeyRing,
  keyIdSchema,
  parseKeyFile,
} from '../key-files.ts';
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

/** The JSON an encryption key file (a mounted secret) or environment variable holds. */
const keyFileSchema = z
  .object({
    keys: z
      .array(
        z
          .object({
            id: keyIdSchema,
            alg: z.literal(ENCRYPTION_ALGORITHM),
            secret: base64Schema,
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export type EncryptionKeyFile = z.input<typeof keyFileSchema>;

/**
 * The encryption keys a worker opens bodies with, by id. During a rotation it holds the old key
 * and the new one: bodies sealed with either open, producers move to the new id, and the old key
 * is removed once no job sealed with it can still be in a queue or a dead letter you will replay.
 */
export class EncryptionKeySet extends KeyRing<EncryptionKey> {
  constructor(keys: Iterable<EncryptionKey>) {
    super(keys, 'encryption key');
  }

  /**
   * Reads a key set from JSON (`{"keys": [{"id", "alg": "aes-256-gcm", "secret"}]}`, each secret
   * 32 bytes in base64). `source` names where it came from in errors; no error quotes a key.
   */
  static fromJson(text: string, source: string): EncryptionKeySet {
    const { keys } = parseKeyFile(text, source, keyFileSchema);
    return new EncryptionKeySet(
      keys.map((entry, index) => {
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
}

/** An AES-256-GCM key from its 32 secret bytes (the bytes are copied). */
export function aesKey(id: string, secret: Buffer, where = `encryption key ${id}`): EncryptionKey {
  if (!isKeyId(id)) {
    throw new ConfigError(
      `${where}.id: expected ${KEY_ID_RULE}, found ${JSON.stringify(id.slice(0, 140))}`,
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
