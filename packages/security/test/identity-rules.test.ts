import { ConfigError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import {
  type IamIdentity,
  type IdentityRule,
  IdentityRules,
  type OidcIdentity,
  parseIamArn,
} from '../src/index.ts';
import { refused } from './fixtures/identity/refusals.ts';

const ISSUER = 'https://id.example.test/';

function oidc(claims: Record<string, unknown>, issuer = ISSUER): OidcIdentity {
  return {
    kind: 'oidc',
    subject: 'user-1',
    issuer,
    claims: { sub: 'user-1', iss: issuer, ...claims },
  };
}

function role(name: string, account = '123456789012'): IamIdentity {
  return parseIamArn(`arn:aws:sts::${account}:assumed-role/${name}/session-1`);
}

describe('IdentityRules', () => {
  const rules = new IdentityRules([
    {
      name: 'ml-admins',
      kind: 'oidc',
      issuer: ISSUER,
      claims: { groups: 'ml-admins' },
      tenant: { claim: 'org_id' },
      scope: 'restricted',
      priority: 7,
    },
    {
      kind: 'oidc',
      issuer: 'https://*.example.test/',
      claims: { org_id: ['acme', 'globex'] },
      tenant: { claim: 'org_id' },
      scope: 'public',
      modelTypes: ['feature-extraction'],
    },
    {
      kind: 'aws-iam',
      account: '123456789012',
      role: 'inference-*',
      tenant: { iam: 'role' },
      scope: 'internal',
      priority: 3,
    },
    {
      kind: 'aws-iam',
      principalType: ['role', 'assumed-role'],
      tenant: { iam: 'account' },
      scope: 'public',
    },
  ]);

  it('gives the first matching rule its say, claim-derived tenant included', () => {
    const route = rules.route(
      oidc({ groups: ['staff', 'ml-admins'], org_id: 'acme' }),
      'text-classification',
    );
    expect(route).toEqual({
      modelType: 'text-classification',
      tenant: 'acme',
      scope: 'restricted',
      priority: 7,
      routingKey: 'text-classification.restricted',
      rule: { index: 0, name: 'ml-admins' },
    });
  });

  it('falls to a later rule when an earlier one does not match, and omits an unset priority', () => {
    const route = rules.route(oidc({ groups: ['staff'], org_id: 'globex' }), 'feature-extraction');
    expect(route).toEqual({
      modelType: 'feature-extraction',
      tenant: 'globex',
      scope: 'public',
      routingKey: 'feature-extraction.public',
      rule: { index: 1 },
    });
  });

  it('matches an issuer by glob', () => {
    const identity = oidc({ org_id: 'acme' }, 'https://eu.example.test/');
    expect(rules.route(identity, 'feature-extraction').rule.index).toBe(1);
    const other = oidc({ org_id: 'acme' }, 'https://example.org/');
    expect(() => rules.route(other, 'feature-extraction')).toThrow('no rule matches');
  });

  it('refuses an identity no rule matches: no-rule', async () => {
    const error = await refused(
      () => rules.route(oidc({ org_id: 'initech' }), 'feature-extraction'),
      'no-rule',
    );
    expect(error.message).toBe(`no rule matches OIDC subject "user-1" of "${ISSUER}"`);
  });

  it('refuses a model type the matching rule does not allow, naming it', async () => {
    const error = await refused(
      () => rules.route(oidc({ org_id: 'acme' }), 'text-generation'),
      'no-rule',
    );
    expect(error.message).toContain('does not allow model type "text-generation"');
    expect(error.message).toContain('it allows feature-extraction');
  });

  it('refuses a model type that could route elsewhere, or no model type', async () => {
    for (const modelType of ['feature-extraction.#', 'a:b', '.a', '', 'Upper', '*']) {
      const error = await refused(
        () => rules.route(oidc({ groups: 'ml-admins', org_id: 'acme' }), modelType),
        'no-rule',
      );
      expect(error.message).toContain('model type');
    }
  });

  it('refuses when the claim a tenant comes from is missing, never defaulting', async () => {
    const error = await refused(
      () => rules.route(oidc({ groups: 'ml-admins' }), 'feature-extraction'),
      'no-rule',
    );
    expect(error.message).toBe(
      'rules[0] ("ml-admins") takes the tenant from claim "org_id", but OIDC subject "user-1" ' +
        `of "${ISSUER}" has none`,
    );
  });

  it('refuses a claim-derived tenant that is not a valid tenant', async () => {
    for (const org of ['has space', 'a#b', 42, { id: 'acme' }, '', 'x'.repeat(200)]) {
      const error = await refused(
        () => rules.route(oidc({ groups: 'ml-admins', org_id: org }), 'feature-extraction'),
        'no-rule',
      );
      expect(error.message).toContain('takes the tenant from claim "org_id": expected');
    }
  });

  it('matches an IAM role name by glob and takes the tenant from the role', () => {
    const route = rules.route(role('inference-batch'), 'feature-extraction');
    expect(route).toMatchObject({
      tenant: 'inference-batch',
      scope: 'internal',
      priority: 3,
      routingKey: 'feature-extraction.internal',
      rule: { index: 2 },
    });
  });

  it('falls past a role glob that does not match, to a tenant from the account', () => {
    const route = rules.route(role('reporting'), 'feature-extraction');
    expect(route).toMatchObject({ tenant: '123456789012', scope: 'public', rule: { index: 3 } });
  });

  it('never matches a user with a role or principal-type rule meant for roles', async () => {
    const user = parseIamArn('arn:aws:iam::123456789012:user/inference-alice');
    await refused(() => rules.route(user, 'feature-extraction'), 'no-rule');
  });

  it('matches a user by glob, and refuses to take a tenant from the role a user lacks', async () => {
    const users = new IdentityRules([
      { kind: 'aws-iam', user: 'ops-*', tenant: { iam: 'role' }, scope: 'public' },
    ]);
    const user = parseIamArn('arn:aws:iam::123456789012:user/ops-bob');
    const error = await refused(() => users.route(user, 'feature-extraction'), 'no-rule');
    expect(error.message).toContain('takes the tenant from the IAM role, but IAM user');
  });

  it('matches number and boolean claims by their text, and never an object claim', () => {
    const typed = new IdentityRules([
      { kind: 'oidc', claims: { tier: '2', verified: 'true' }, tenant: 'acme', scope: 'public' },
    ]);
    expect(typed.route(oidc({ tier: 2, verified: true }), 'echo').tenant).toBe('acme');
    expect(() => typed.route(oidc({ tier: { n: 2 }, verified: true }), 'echo')).toThrow(
      'no rule matches',
    );
  });

  it('treats every character of a pattern but * as itself', () => {
    const literal = new IdentityRules([
      { kind: 'oidc', claims: { team: 'a.c*' }, tenant: 'acme', scope: 'public' },
    ]);
    expect(literal.route(oidc({ team: 'a.c' }), 'echo').tenant).toBe('acme');
    expect(literal.route(oidc({ team: 'a.cde' }), 'echo').tenant).toBe('acme');
    expect(() => literal.route(oidc({ team: 'abc' }), 'echo')).toThrow('no rule matches');
  });
});

describe('IdentityRules config', () => {
  it('reads rules from parsed JSON', () => {
    const json = JSON.parse(`[
      { "kind": "oidc", "claims": { "scp": "jobs:write" }, "tenant": { "claim": "org_id" },
        "scope": "public", "priority": 2, "modelTypes": ["echo"] }
    ]`);
    const route = IdentityRules.parse(json, 'producer.rules').route(
      oidc({ scp: ['jobs:read', 'jobs:write'], org_id: 'acme' }),
      'echo',
    );
    expect(route).toMatchObject({ tenant: 'acme', priority: 2, routingKey: 'echo.public' });
  });

  const valid: IdentityRule = { kind: 'oidc', tenant: 'acme', scope: 'public' };

  it.each([
    [[], 'rules: expected at least 1 items'],
    [[{ ...valid, scope: 'Public' }], 'rules[0].scope: expected 1 to 63 lower-case letters'],
    [[{ ...valid, scope: 'a.b' }], 'rules[0].scope: expected 1 to 63 lower-case letters'],
    [[{ ...valid, scope: undefined }], 'rules[0].scope: expected string, found nothing'],
    [[valid, { ...valid, priority: 10 }], 'rules[1].priority: expected at most 9, found 10'],
    [[{ ...valid, priority: 1.5 }], 'rules[0].priority: expected int'],
    [[{ ...valid, tenant: 'has space' }], 'rules[0].tenant: expected 1 to 128 letters'],
    [[{ ...valid, tenant: { iam: 'account' } }], 'rules[0].tenant: expected a tenant'],
    [[{ ...valid, modelTypes: ['echo', 'a*'] }], 'rules[0].modelTypes[1]: expected 1 to 100'],
    [[{ ...valid, claims: { org: 7 } }], 'rules[0].claims.org: expected a value, a glob'],
    [[{ ...valid, tennant: 'x' }], 'rules[0]: unexpected field tennant'],
    [
      [{ ...valid, kind: 'saml' }],
      'rules[0].kind: expected one of "oidc", "aws-iam", found "saml"',
    ],
    [
      [{ kind: 'aws-iam', role: 'a', user: 'b', tenant: 'x', scope: 'public' }],
      'rules[0].user: a rule matches a role or a user, not both',
    ],
    [
      [{ kind: 'aws-iam', principalType: 'group', tenant: 'x', scope: 'public' }],
      'rules[0].principalType: expected "role", "assumed-role", "user"',
    ],
    ['not a list', 'rules: expected array'],
  ])('refuses %j with a message naming the field', (value, message) => {
    expect(() => IdentityRules.parse(value)).toThrow(ConfigError);
    expect(() => IdentityRules.parse(value)).toThrow(message);
  });

  it('checks rules given through the typed API the same way', () => {
    expect(() => new IdentityRules([{ ...valid, scope: 'no spaces' }])).toThrow(
      'rules[0].scope: expected 1 to 63',
    );
  });
});
