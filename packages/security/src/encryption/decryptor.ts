import {
  type BodyDecryptor,
  type Decryption,
  type Delivery,
  HEADERS,
  type HeaderValue,
} from '@warren/core';
import { CanonicalFormError } from '../canonical.ts';
import { isKeyId } from '../key-files.ts';
import { associatedData, ENCRYPTION_ALGORITHM, IV_BYTES, TAG_BYTES } from './format.ts';
import type { EncryptionKeySet } from './keys.ts';

export interface AesGcmDecryptorOptions {
  keys: EncryptionKeySet;
  /** Refuse jobs that arrive unencrypted (default false): set once every producer encrypts. */
  required?: boolean;
}

/**
 * The worker side of encryption: a {@link BodyDecryptor} for `ConsumerOptions.decryptor`. Refuses,
 * each with its own reason: an algorithm other than AES-256-GCM (`unsupported-encryption`), no
 * key id or a body too short for an IV and a tag (`malformed-encryption`), a key id not in the
 * key set (`unknown-encryption-key`), and a ciphertext that does not authenticate with the key
 * and the job's bound fields (`decryption-failed`: changed, moved from another job, or sealed
 * with another key of the same id). No refusal says anything of the plaintext.
 */
export class AesGcmDecryptor implements BodyDecryptor {
  readonly required: boolean;
  readonly #keys: EncryptionKeySet;

  constructor(options: AesGcmDecryptorOptions) {
    this.#keys = options.keys;
    this.required = options.required ?? false;
  }

  decrypt(delivery: Delivery): Decryption {
    const { body, properties } = delivery;
    const headers = properties.headers ?? {};
    const alg = stringOf(headers[HEADERS.encryption]);
    if (alg !== ENCRYPTION_ALGORITHM) {
      const found = alg === undefined ? 'none' : JSON.stringify(alg.slice(0, 64));
      return refuse(
        'unsupported-encryption',
        `${HEADERS.encryption}: expected ${ENCRYPTION_ALGORITHM}, found ${found}`,
      );
    }
    const keyId = stringOf(headers[HEADERS.encryptionKeyId]);
    if (keyId === undefined || !isKeyId(keyId)) {
      const found = keyId === undefined ? 'none' : 'an id that is not one';
      return refuse(
        'malformed-encryption',
        `${HEADERS.encryptionKeyId}: expected a key id, found ${found}`,
      );
    }
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      return refuse(
        'unknown-encryption-key',
        `key id ${keyId} is not in the encryption key set`,
        keyId,
      );
    }
    if (body.length < IV_BYTES + TAG_BYTES) {
      return refuse(
        'malformed-encryption',
        `expected at least ${IV_BYTES + TAG_BYTES} bytes (IV and tag), found ${body.length}`,
        keyId,
      );
    }

    let bound: Buffer;
    try {
      bound = associatedData(properties, alg, keyId);
    } catch (error) {
      if (!(error instanceof CanonicalFormError)) throw error;
      return refuse(
        'malformed-encryption',
        `its bound fields cannot be read: ${error.message}`,
        keyId,
      );
    }
    const plaintext = key.open(body, bound);
    if (plaintext === undefined) {
      return refuse(
        'decryption-failed',
        `does not authenticate with key ${keyId}: the ciphertext or a bound header was changed, ` +
          'it was moved from another job, or it was sealed with another key',
        keyId,
      );
    }
    return { decrypted: true, plaintext, keyId };
  }
}

function refuse(
  reason: Extract<Decryption, { decrypted: false }>['reason'],
  message: string,
  keyId?: string,
): Decryption {
  return { decrypted: false, reason, message, ...(keyId === undefined ? {} : { keyId }) };
}

function stringOf(value: HeaderValue | Buffer): string | undefined {
  if (Buffer.isBuffer(value)) return value.toString('utf-8');
  return typeof value === 'string' ? value : undefined;
}
