import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  canonicalBytes,
  KeySet,
  SignatureVerifier,
  signatureHeaders,
  signedFields,
} from '../src/index.ts';
import { VECTORS, vectorKeys } from './vectors.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/warren_sign.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warren-interop-'));
const keys = vectorKeys();

/** Runs the Python implementation on one request, through a temp file, and reads its answer. */
function python(request: object): { canonicalHex: string; signature?: string; valid?: boolean } {
  const path = join(dir, 'request.json');
  writeFileSync(path, JSON.stringify(request));
  return JSON.parse(execFileSync('python3', [SCRIPT, path], { encoding: 'utf-8' }));
}

function keyMaterial(alg: string) {
  return alg === 'hmac-sha256'
    ? { secret: keys.raw.secret.toString('base64') }
    : {
        publicKey: keys.raw.publicKey.toString('base64'),
        privateKey: keys.raw.seed.toString('base64'),
      };
}

const cases = VECTORS.map((vector) => {
  const key = keys[vector.key];
  const fields = signedFields(vector.properties, key.alg, key.id);
  const { alg: _alg, keyId: _keyId, ...jobFields } = fields;
  return { ...vector, signing: key, fields: jobFields };
});

describe('interop with a producer in Python', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(cases)('verifies in Warren what Python signs: $name', async (vector) => {
    const answer = python({
      op: 'sign',
      alg: vector.signing.alg,
      keyId: vector.signing.id,
      key: keyMaterial(vector.signing.alg),
      fields: vector.fields,
      body: vector.body.toString('base64'),
    });
    const properties = {
      ...vector.properties,
      headers: {
        ...vector.properties.headers,
        'x-warren-signature-alg': vector.signing.alg,
        'x-warren-key-id': vector.signing.id,
        'x-warren-signature': answer.signature,
      },
    };
    const publicOnly = KeySet.fromJson(
      JSON.stringify({
        keys: [
          vector.signing.alg === 'hmac-sha256'
            ? { id: vector.signing.id, alg: 'hmac-sha256', ...keyMaterial('hmac-sha256') }
            : {
                id: vector.signing.id,
                alg: 'ed25519',
                publicKey: keys.raw.publicKey.toString('base64'),
              },
        ],
      }),
      'keys',
    );
    const createdAt = Number(vector.fields.createdAt);
    const verifier = new SignatureVerifier({ keys: publicOnly, now: () => createdAt });

    expect(answer.canonicalHex).toBe(
      canonicalBytes(
        signedFields(vector.properties, vector.signing.alg, vector.signing.id),
        vector.body,
      ).toString('hex'),
    );
    expect(
      await verifier.verify({
        body: vector.body,
        properties,
        exchange: 'warren.jobs',
        routingKey: 'x.public',
        redelivered: false,
        deliveryTag: 1,
        queue: 'warren.jobs.x',
      }),
    ).toEqual({ accepted: true, keyId: vector.signing.id });
  });

  it.each(cases)('verifies in Python what Warren signs: $name', (vector) => {
    const headers = signatureHeaders(vector.signing, vector.body, vector.properties);
    const request = {
      op: 'verify',
      alg: vector.signing.alg,
      keyId: vector.signing.id,
      key: keyMaterial(vector.signing.alg),
      fields: vector.fields,
      body: vector.body.toString('base64'),
    };

    expect(python({ ...request, signature: headers['x-warren-signature'] }).valid).toBe(true);
    const tampered = { ...request, body: Buffer.from('{"text":"tampered"}').toString('base64') };
    expect(python({ ...tampered, signature: headers['x-warren-signature'] }).valid).toBe(false);
  });
});
