import {
  type EncryptedBody,
  HEADERS,
  type JobEncryptor,
  type MessageProperties,
} from '@warren/core';
import { associatedData } from './format.ts';
import type { EncryptionKey } from './keys.ts';

/**
 * A {@link JobEncryptor} for `JobPublisher`'s `encryptor`: seals each job's JSON body with `key`
 * under a fresh IV, bound to the job (see {@link associatedData}), and names the algorithm and
 * key beside it. Give the publisher a signer too: it signs the ciphertext. Pass the new key here
 * to rotate; workers must hold it in their key set first.
 */
export function createEncryptor(key: EncryptionKey): JobEncryptor {
  return { encrypt: (body, properties) => sealBody(key, body, properties) };
}

/**
 * The sealed body and the encryption headers for a job with these body bytes and properties (as
 * they will be sent; the headers returned are not among them yet). The content type stays the
 * plaintext's: workers decode the body as it names once they have decrypted it.
 */
export function sealBody(
  key: EncryptionKey,
  body: Buffer,
  properties: MessageProperties,
): EncryptedBody {
  return {
    body: key.seal(body, associatedData(properties, key.alg, key.id)),
    headers: { [HEADERS.encryption]: key.alg, [HEADERS.encryptionKeyId]: key.id },
  };
}
