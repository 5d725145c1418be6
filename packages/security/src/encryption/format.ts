import type { MessageProperties } from '@warren/core';
import { encodeField, signedFields } from '../canonical.ts';

/** The cipher Warren seals job bodies with, by the name `x-warren-encryption` carries. */
export const ENCRYPTION_ALGORITHM = 'aes-256-gcm';
export type EncryptionAlgorithm = typeof ENCRYPTION_ALGORITHM;

/** A fresh random IV per message: 96 bits, the size GCM is defined for without hashing it. */
export const IV_BYTES = 12;
/** The full 128-bit GCM tag; shorter tags are neither made nor accepted. */
export const TAG_BYTES = 16;

/** The first field of the additional data: names the format, so that a v2 cannot be confused. */
export const AAD_TAG = 'warren-encryption-v1';

/**
 * The additional authenticated data of a job's ciphertext (docs/encryption.md is the contract):
 * the tag, the algorithm and key id, then the job's message id, tenant, scope, model type,
 * content type and reply to, as they travel. A ciphertext opens only with the same values, so
 * it cannot be moved to another job, tenant or scope, nor its result sent elsewhere.
 *
 * Fields are encoded as in the signing canonical form (docs/signing.md): a present one is 0x01,
 * its UTF-8 length as a 4-byte big-endian integer, then its bytes; an absent one is 0x00. They
 * are read the same way too, so a header sent as bytes binds as its UTF-8 text; a field that
 * cannot be read throws `CanonicalFormError`.
 */
export function associatedData(properties: MessageProperties, alg: string, keyId: string): Buffer {
  const fields = signedFields(properties, alg, keyId);
  const values = [
    AAD_TAG,
    fields.alg,
    fields.keyId,
    fields.messageId,
    fields.tenant,
    fields.scope,
    fields.modelType,
    fields.contentType,
    fields.replyTo,
  ];
  return Buffer.concat(values.map(encodeField));
}
