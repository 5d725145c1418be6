import { createHash, createPrivateKey } from 'node:crypto';
import type { MessageProperties } from '@warren/core';
import { ed25519Key, hmacKey, type SigningKey } from '../src/index.ts';

/** Test-vector keys, derived from public labels: known to everyone, so never use them for real. */
export function vectorKeys(): { hmac: SigningKey; ed25519: SigningKey; raw: VectorKeyMaterial } {
  const secret = createHash('sha256').update('warren-test-vector-hmac').digest();
  const seed = createHash('sha256').update('warren-test-vector-ed25519').digest();
  const publicKey = ed25519PublicFromSeed(seed);
  return {
    hmac: hmacKey('vector-hmac-1', secret),
    ed25519: ed25519Key('vector-ed25519-1', publicKey, seed),
    raw: { secret, seed, publicKey },
  };
}

export interface VectorKeyMaterial {
  secret: Buffer;
  seed: Buffer;
  publicKey: Buffer;
}

export function ed25519PublicFromSeed(seed: Buffer): Buffer {
  // A PKCS#8 wrapper around the seed: the fixed 16-byte prefix RFC 8410 gives Ed25519 keys.
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const jwk = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
    format: 'jwk',
  });
  return Buffer.from(jwk.x!, 'base64url');
}

/** The three documented vectors (docs/signing.md): their jobs, key and expected output. */
export const VECTORS: Array<{
  name: string;
  key: 'hmac' | 'ed25519';
  body: Buffer;
  properties: MessageProperties;
}> = [
  {
    name: 'a full job, HMAC-SHA256',
    key: 'hmac',
    body: Buffer.from('{"text":"hello"}'),
    properties: {
      messageId: 'job-0001',
      contentType: 'application/json',
      priority: 5,
      replyTo: 'replies.acme',
      headers: {
        'x-warren-tenant': 'acme',
        'x-warren-scope': 'restricted',
        'x-warren-model-type': 'feature-extraction',
        'x-warren-deadline': 1_767_225_600_000,
        'x-warren-created-at': 1_767_225_000_000,
      },
    },
  },
  {
    name: 'no scope, priority, deadline or reply-to; created-at as a decimal string; HMAC-SHA256',
    key: 'hmac',
    body: Buffer.from('{"text":"zoë"}'),
    properties: {
      messageId: 'job-0002',
      contentType: 'application/json',
      headers: {
        'x-warren-tenant': 'globex',
        'x-warren-model-type': 'text-classification',
        'x-warren-created-at': '1767225000000',
      },
    },
  },
  {
    name: 'a full job, Ed25519',
    key: 'ed25519',
    body: Buffer.from('{"text":"hello"}'),
    properties: {
      messageId: 'job-0003',
      contentType: 'application/json',
      priority: 0,
      headers: {
        'x-warren-tenant': 'acme',
        'x-warren-scope': 'public',
        'x-warren-model-type': 'feature-extraction',
        'x-warren-created-at': 1_767_225_000_000,
      },
    },
  },
];
