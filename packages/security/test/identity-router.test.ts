import { ConfigError, encodeJob, HEADERS } from '@warren/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IamTrust, IdentityRouter, IdentityRules, OidcVerifier } from '../src/index.ts';
import {
  AUDIENCE,
  ISSUER,
  type IssuerKey,
  JwksServer,
  NOW,
  newKey,
  signToken,
} from './fixtures/identity/jwks-server.ts';
import { refused } from './fixtures/identity/refusals.ts';

const ACCOUNT = '123456789012';
let key: IssuerKey;
let server: JwksServer;

beforeAll(async () => {
  key = await newKey('rsa-1', 'RS256');
  server = await JwksServer.start([key.jwk]);
});

afterAll(() => server.close());

/** The config a gateway would keep in a JSON or YAML file. */
function config(): Record<string, unknown> {
  return {
    oidc: { issuer: ISSUER, audience: AUDIENCE, jwksUrl: server.url },
    iam: { trustedAccounts: [ACCOUNT] },
    rules: [
      {
        name: 'batch',
        kind: 'oidc',
        claims: { scope: 'jobs:*' },
        tenant: { claim: 'org_id' },
        scope: 'restricted',
        priority: 6,
        modelTypes: ['feature-extraction', 'text-classification'],
      },
      { kind: 'aws-iam', role: 'producer-*', tenant: { iam: 'account' }, scope: 'internal' },
    ],
  };
}

describe('IdentityRouter', () => {
  it('turns a bearer token into the JobSpec and routing key of its job', async () => {
    const router = IdentityRouter.fromConfig(config(), 'identity', { now: () => NOW });
    const token = await signToken(key, { scope: 'jobs:write', org_id: 'acme' });

    const identity = await router.fromBearer(`Bearer ${token}`);
    const route = router.route(identity, 'feature-extraction');
    const spec = router.jobSpec(identity, 'feature-extraction', {
      input: { text: 'hello' },
      messageId: 'job-1',
    });

    expect(route).toEqual({
      modelType: 'feature-extraction',
      tenant: 'acme',
      scope: 'restricted',
      priority: 6,
      routingKey: 'feature-extraction.restricted',
      rule: { index: 0, name: 'batch' },
    });
    expect(spec).toEqual({
      modelType: 'feature-extraction',
      tenant: 'acme',
      scope: 'restricted',
      priority: 6,
      input: { text: 'hello' },
      messageId: 'job-1',
    });
    const { properties } = encodeJob(spec);
    expect(properties.headers).toMatchObject({
      [HEADERS.tenant]: 'acme',
      [HEADERS.scope]: 'restricted',
      [HEADERS.modelType]: 'feature-extraction',
    });
    expect(properties.priority).toBe(6);
  });

  it('turns a trusted IAM principal into its job fields', () => {
    const router = IdentityRouter.fromConfig(config());
    const identity = router.fromIamArn(`arn:aws:sts::${ACCOUNT}:assumed-role/producer-etl/run-7`);
    expect(router.route(identity, 'echo')).toMatchObject({
      tenant: ACCOUNT,
      scope: 'internal',
      routingKey: 'echo.internal',
    });
    expect(router.jobSpec(identity, 'echo', { input: 1 })).not.toHaveProperty('priority');
  });

  it('lets the identity, not the caller, decide tenant, scope and priority', async () => {
    const router = IdentityRouter.fromConfig(config(), 'identity', { now: () => NOW });
    const identity = await router.fromBearer(
      await signToken(key, { scope: 'jobs:write', org_id: 'acme' }),
    );
    const smuggled = { input: {}, tenant: 'other', scope: 'public', priority: 9 };
    expect(router.jobSpec(identity, 'feature-extraction', smuggled)).toMatchObject({
      tenant: 'acme',
      scope: 'restricted',
      priority: 6,
    });
  });

  it('refuses an Authorization value that holds no bearer token, never quoting it', async () => {
    const router = IdentityRouter.fromConfig(config());
    await refused(router.fromBearer(undefined), 'malformed');
    await refused(router.fromBearer('  '), 'malformed');
    const basic = await refused(router.fromBearer('Basic dXNlcjpzZWNyZXQ='), 'malformed');
    expect(basic.message).toContain('scheme "Basic"');
    expect(basic.message).not.toContain('dXNlcjpzZWNyZXQ');
    await refused(router.fromBearer('Bearer a b'), 'malformed');
  });

  it('passes on each refusal of the token and of the rules', async () => {
    const router = IdentityRouter.fromConfig(config(), 'identity', { now: () => NOW });
    const other = await newKey('rsa-2', 'RS256');
    await refused(router.fromBearer(await signToken(other)), 'unknown-key');
    const reader = await router.fromBearer(await signToken(key, { scope: 'read', org_id: 'x' }));
    await refused(() => router.route(reader, 'feature-extraction'), 'no-rule');
    await refused(
      () => router.fromIamArn('arn:aws:iam::999999999999:role/producer-a'),
      'untrusted',
    );
  });

  it('checks each token with the verifier of its issuer', async () => {
    const second = await newKey('ed-1', 'EdDSA');
    const secondIssuer = 'https://login.partner.test/';
    const router = new IdentityRouter({
      oidc: [
        new OidcVerifier({
          issuer: ISSUER,
          audience: AUDIENCE,
          jwksUrl: server.url,
          now: () => NOW,
        }),
        new OidcVerifier({
          issuer: secondIssuer,
          audience: AUDIENCE,
          jwks: { keys: [second.jwk] },
          now: () => NOW,
        }),
      ],
      rules: new IdentityRules([
        { kind: 'oidc', issuer: secondIssuer, tenant: 'partner', scope: 'public' },
        { kind: 'oidc', tenant: { claim: 'org_id' }, scope: 'public' },
      ]),
    });

    const partner = await router.fromBearer(await signToken(second, { iss: secondIssuer }));
    expect(router.route(partner, 'echo').tenant).toBe('partner');
    const own = await router.fromBearer(await signToken(key, { org_id: 'acme' }));
    expect(router.route(own, 'echo').tenant).toBe('acme');

    // A token naming the partner but signed with the other issuer's key proves nothing.
    await refused(router.fromBearer(await signToken(key, { iss: secondIssuer })), 'unknown-key');
    const stranger = await signToken(key, { iss: 'https://evil.test/' });
    const error = await refused(router.fromBearer(stranger), 'wrong-issuer', stranger);
    expect(error.message).toContain('"https://evil.test/"');
    await refused(router.fromBearer('garbage'), 'malformed');
  });

  it('says so when asked for what it was not configured for', async () => {
    const router = new IdentityRouter({
      iam: new IamTrust({ trustedAccounts: [ACCOUNT] }),
      rules: new IdentityRules([{ kind: 'aws-iam', tenant: 'acme', scope: 'public' }]),
    });
    await expect(router.fromBearer('Bearer x.y.z')).rejects.toThrow(ConfigError);
    const oidcOnly = new IdentityRouter({
      oidc: new OidcVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: server.url }),
      rules: new IdentityRules([{ kind: 'oidc', tenant: 'acme', scope: 'public' }]),
    });
    expect(() => oidcOnly.fromIamArn(`arn:aws:iam::${ACCOUNT}:role/a`)).toThrow(ConfigError);
  });

  it('refuses a config with a message naming the field at fault', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...config(), extra: 1 }, 'identity: unexpected field extra'],
      [{ ...config(), oidc: { ...(config().oidc as object), issuer: 7 } }, 'identity.oidc.issuer'],
      [{ ...config(), oidc: [{ issuer: ISSUER }] }, 'identity.oidc[0].audience'],
      [{ ...config(), iam: { trustedAccounts: ['1'] } }, 'identity.iam.trustedAccounts[0]'],
      [{ ...config(), rules: [{ kind: 'oidc', tenant: 'a' }] }, 'identity.rules[0].scope'],
      [{ ...config(), rules: undefined }, 'identity.rules: expected array'],
    ];
    for (const [value, message] of cases) {
      expect(() => IdentityRouter.fromConfig(value)).toThrow(ConfigError);
      expect(() => IdentityRouter.fromConfig(value)).toThrow(message);
    }
    const twice = { ...config(), oidc: [config().oidc, config().oidc] };
    expect(() => IdentityRouter.fromConfig(twice)).toThrow('is given twice');
  });
});
