import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '@warren/core';
import { SignJWT } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OidcVerifier, type OidcVerifierOptions } from '../src/index.ts';
import {
  AUDIENCE,
  compact,
  deadUrl,
  ISSUER,
  type IssuerKey,
  JwksServer,
  NOW,
  NOW_S,
  newKey,
  signToken,
} from './fixtures/identity/jwks-server.ts';
import { refused } from './fixtures/identity/refusals.ts';

let rsa: IssuerKey;
let ed: IssuerKey;
let other: IssuerKey;
const servers: JwksServer[] = [];

beforeAll(async () => {
  rsa = await newKey('rsa-1', 'RS256');
  ed = await newKey('ed-1', 'EdDSA');
  other = await newKey('rsa-other', 'RS256');
});

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function serve(...keys: IssuerKey[]): Promise<JwksServer> {
  const server = await JwksServer.start(keys.map((key) => key.jwk));
  servers.push(server);
  return server;
}

async function verifierFor(
  server: JwksServer,
  options: Partial<OidcVerifierOptions> = {},
): Promise<OidcVerifier> {
  return new OidcVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUrl: server.url,
    now: () => NOW,
    ...options,
  });
}

describe('OidcVerifier against a JWKS served on 127.0.0.1', () => {
  it('accepts an RS256 token and returns its subject, issuer and claims', async () => {
    const verifier = await verifierFor(await serve(rsa, ed));
    const token = await signToken(rsa, { org_id: 'acme' });

    const identity = await verifier.verify(token);

    expect(identity).toMatchObject({ kind: 'oidc', subject: 'user-1', issuer: ISSUER });
    expect(identity.claims).toMatchObject({ org_id: 'acme', aud: AUDIENCE });
  });

  it('accepts an EdDSA token', async () => {
    const verifier = await verifierFor(await serve(rsa, ed));
    const identity = await verifier.verify(await signToken(ed, { sub: 'svc-batch' }));
    expect(identity.subject).toBe('svc-batch');
  });

  it('accepts a token without kid when one of several keys verifies it', async () => {
    const second = await newKey('rsa-2', 'RS256');
    const verifier = await verifierFor(await serve(second, rsa));
    const identity = await verifier.verify(await signToken(rsa, {}, { kid: undefined }));
    expect(identity.subject).toBe('user-1');
  });

  it('takes its keys from an inline JWKS', async () => {
    const verifier = new OidcVerifier({
      issuer: ISSUER,
      audience: [AUDIENCE, 'other'],
      jwks: { keys: [ed.jwk] },
      now: () => NOW,
    });
    expect((await verifier.verify(await signToken(ed))).subject).toBe('user-1');
    await refused(verifier.verify(await signToken(rsa)), 'unknown-key');
  });

  it('refuses a token whose payload was changed after signing: bad-signature', async () => {
    const verifier = await verifierFor(await serve(rsa));
    const token = await signToken(rsa, { org_id: 'acme' });
    const [header, , signature] = token.split('.');
    const payload = {
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'user-1',
      exp: NOW_S + 3600,
      org_id: 'evil',
    };
    const forged = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${signature}`;

    const error = await refused(verifier.verify(forged), 'bad-signature', forged);
    expect(error.message).toContain('does not verify');
  });

  it('refuses a token signed with a key whose kid is not in the JWKS: unknown-key', async () => {
    const verifier = await verifierFor(await serve(rsa));
    const token = await signToken(other);
    const error = await refused(verifier.verify(token), 'unknown-key', token);
    expect(error.message).toContain('"rsa-other"');
  });

  it('refuses a token of another issuer, signed with a trusted key: wrong-issuer', async () => {
    const verifier = await verifierFor(await serve(rsa));
    const token = await signToken(rsa, { iss: 'https://evil.example.test/' });
    const error = await refused(verifier.verify(token), 'wrong-issuer', token);
    expect(error.message).toContain(`expected issuer "${ISSUER}"`);
  });

  it('refuses a token for another audience: wrong-audience', async () => {
    const verifier = await verifierFor(await serve(rsa));
    const token = await signToken(rsa, { aud: 'billing' });
    const error = await refused(verifier.verify(token), 'wrong-audience', token);
    expect(error.message).toContain('"billing"');
  });

  it('refuses a token expired longer ago than the clock skew: expired', async () => {
    const verifier = await verifierFor(await serve(rsa));
    const token = await signToken(rsa, { exp: NOW_S - 61 });
    const error = await refused(verifier.verify(token), 'expired', token);
    expect(error.message).toContain('clock skew allowed 60 s');
  });

  it('accepts a token expired within the clock skew', async () => {
    const verifier = await verifierFor(await serve(rsa));
    const token = await signToken(rsa, { exp: NOW_S - 30 });
    expect((await verifier.verify(token)).subject).toBe('user-1');
  });

  it('honours a configured clock skew', async () => {
    const verifier = await verifierFor(await serve(rsa), { clockSkewMs: 5_000 });
    await refused(verifier.verify(await signToken(rsa, { exp: NOW_S - 30 })), 'expired');
  });

  it('refuses a token whose nbf lies beyond the clock skew: not-yet-valid', async () => {
    const verifier = await verifierFor(await serve(rsa));
    const token = await signToken(rsa, { nbf: NOW_S + 120 });
    await refused(verifier.verify(token), 'not-yet-valid', token);
    expect((await verifier.verify(await signToken(rsa, { nbf: NOW_S + 30 }))).subject).toBe(
      'user-1',
    );
  });

  it('refuses an unsigned token (alg none) without fetching the JWKS', async () => {
    const server = await serve(rsa);
    const verifier = await verifierFor(server);
    const token = compact(
      { alg: 'none' },
      { iss: ISSUER, aud: AUDIENCE, sub: 'admin', exp: NOW_S + 3600 },
    );

    const error = await refused(verifier.verify(token), 'bad-signature', token);
    expect(error.message).toContain('alg "none" is not allowed');
    expect(server.fetches).toBe(0);
  });

  it('refuses an HS256 token unless HS256 was asked for, with its secret', async () => {
    const secret = new Uint8Array(32).fill(7);
    const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', exp: NOW_S + 60 })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .sign(secret);
    const server = await serve(rsa);

    await refused((await verifierFor(server)).verify(token), 'bad-signature', token);

    const asked = await verifierFor(server, { algorithms: ['HS256'], hmacSecret: secret });
    expect((await asked.verify(token)).subject).toBe('user-1');
    const wrongSecret = await verifierFor(server, {
      algorithms: ['HS256'],
      hmacSecret: Buffer.alloc(32, 8).toString('base64'),
    });
    await refused(wrongSecret.verify(token), 'bad-signature', token);
  });

  it('refuses what is not a JWT, and a token without sub: malformed', async () => {
    const verifier = await verifierFor(await serve(rsa));
    await refused(verifier.verify(''), 'malformed');
    await refused(verifier.verify('not-a-jwt'), 'malformed');
    await refused(verifier.verify('a.b'), 'malformed');
    const notJson = `bm90IGpzb24.${Buffer.from('{"sub":"user-1"}').toString('base64url')}.c2ln`;
    await refused(verifier.verify(notJson), 'malformed', notJson);
    await refused(verifier.verify('x'.repeat(20_000)), 'malformed');
    const anonymous = await signToken(rsa, { sub: undefined });
    const error = await refused(verifier.verify(anonymous), 'malformed', anonymous);
    expect(error.message).toContain('"sub"');
  });

  it('checks the signature before it reads the payload', async () => {
    const verifier = await verifierFor(await serve(rsa));
    const token = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.bm90IGpzb24.c2ln`;
    await refused(verifier.verify(token), 'bad-signature', token);
  });

  it('refuses every token while its JWKS server is down: jwks-unavailable', async () => {
    const verifier = await verifierFor(await serve(), { jwksUrl: await deadUrl() });
    const token = await signToken(rsa);
    const error = await refused(verifier.verify(token), 'jwks-unavailable', token);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('refuses when the JWKS server does not answer within the timeout: jwks-unavailable', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const verifier = new OidcVerifier({
        issuer: ISSUER,
        audience: AUDIENCE,
        jwksUrl: `http://127.0.0.1:${port}/jwks`,
        jwksTimeoutMs: 200,
        now: () => NOW,
      });
      await refused(verifier.verify(await signToken(rsa)), 'jwks-unavailable');
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('picks up a key added to the JWKS (rotation) once the cooldown has passed', async () => {
    const server = await serve(rsa);
    const verifier = await verifierFor(server, { jwksCooldownMs: 0 });
    await verifier.verify(await signToken(rsa));
    expect(server.fetches).toBe(1);

    const next = await newKey('rsa-2', 'RS256');
    server.keys = [rsa.jwk, next.jwk];
    expect((await verifier.verify(await signToken(next))).subject).toBe('user-1');
    expect(server.fetches).toBe(2);

    server.keys = [next.jwk];
    await verifier.verify(await signToken(rsa));
    expect(server.fetches).toBe(2);
  });

  it('does not fetch the JWKS again for an unknown kid within the cooldown', async () => {
    const server = await serve(rsa);
    const verifier = await verifierFor(server, { jwksCooldownMs: 60_000 });
    await verifier.verify(await signToken(rsa));

    const next = await newKey('rsa-2', 'RS256');
    server.keys = [rsa.jwk, next.jwk];
    await refused(verifier.verify(await signToken(next)), 'unknown-key');
    expect(server.fetches).toBe(1);
  });
});

describe('OidcVerifier options', () => {
  it('refuses tokens, jwks-unavailable, when an inline key cannot be imported', async () => {
    const broken = { ...rsa.jwk, n: undefined };
    const verifier = new OidcVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { keys: [broken] },
      now: () => NOW,
    });
    const error = await refused(verifier.verify(await signToken(rsa)), 'jwks-unavailable');
    expect(error.message).toContain('the inline JWKS could not be used');
  });

  const base = { issuer: ISSUER, audience: AUDIENCE, jwksUrl: 'https://id.example.test/jwks' };

  it.each([
    [{ algorithms: ['none'] }, 'oidc.algorithms[0]: expected one of "RS256"'],
    [{ algorithms: ['HS256'] }, 'oidc.hmacSecret: expected a secret of at least 32 bytes'],
    [
      { algorithms: ['HS256'], hmacSecret: Buffer.alloc(16).toString('base64') },
      'oidc.hmacSecret: expected at least 32 bytes',
    ],
    [{ hmacSecret: Buffer.alloc(32).toString('base64') }, 'oidc.hmacSecret: given, but no HS*'],
    [{ jwksUrl: 'http://id.example.test/jwks' }, 'oidc.jwksUrl: expected an https URL'],
    [{ jwksUrl: 'https://user:pw@id.example.test/jwks' }, 'oidc.jwksUrl: expected a URL without'],
    [{ jwksUrl: undefined }, 'oidc.jwks: expected either jwksUrl or jwks'],
    [{ jwks: { keys: [{ kty: 'OKP' }] } }, 'oidc.jwks: expected either jwksUrl or jwks'],
    [{ jwksUrl: undefined, jwks: { keys: [] } }, 'oidc.jwks.keys: expected at least 1 items'],
    [{ issuer: '' }, 'oidc.issuer: expected at least 1 characters'],
    [{ clockSkewMs: -1 }, 'oidc.clockSkewMs: expected at least 0'],
    [{ audiences: ['x'] }, 'oidc: unexpected field audiences'],
  ])('refuses %j with a message naming the field', (change, message) => {
    const options = { ...base, ...change } as OidcVerifierOptions;
    expect(() => new OidcVerifier(options)).toThrow(ConfigError);
    expect(() => new OidcVerifier(options)).toThrow(message);
  });
});
