import { HEADERS, type HeaderValue, type JobSigner, type MessageProperties } from '@warren/core';
import { canonicalBytes, signedFields } from './canonical.ts';
import type { SigningKey } from './keys.ts';

/**
 * A {@link JobSigner} for `JobPublisher`: signs each job's body and security headers with `key`
 * and names the key and algorithm beside the signature. Pass the new key here to rotate; workers
 * must hold it in their key set first.
 */
export function createSigner(key: SigningKey): JobSigner {
  if (!key.canSign) throw new TypeError(`key ${key.id}: holds no private key, so it cannot sign`);
  return {
    sign: (body, properties) => signatureHeaders(key, body, properties),
  };
}

/** The signature headers for a job with these body bytes and properties. */
export function signatureHeaders(
  key: SigningKey,
  body: Buffer,
  properties: MessageProperties,
): Record<string, HeaderValue> {
  const data = canonicalBytes(signedFields(properties, key.alg, key.id), body);
  return {
    [HEADERS.signatureAlg]: key.alg,
    [HEADERS.keyId]: key.id,
    [HEADERS.signature]: key.sign(data).toString('base64'),
  };
}
