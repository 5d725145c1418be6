import { SCOPE_PATTERN } from '@warren/core';
import { z } from 'zod';

/**
 * A model type, as a handler's `modelType` must be: no wildcard, no `:`. Its dots stay in the
 * first words of the routing key, since the scope is always the last.
 */
export const MODEL_TYPE = /^[a-z0-9][a-z0-9._-]{0,99}$/;
export const MODEL_TYPE_RULE = "1 to 100 lower-case letters, digits, '.', '_' or '-'";
/** The scope is the routing key's last word: it may hold no dot and no wildcard. */
export const SCOPE_RULE =
  "1 to 63 lower-case letters, digits, '-' or '_', starting with one of the first two";
/** A tenant: what a rule may put in `x-warren-tenant`, whether written in it or taken from a claim. */
export const TENANT = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
export const TENANT_RULE =
  "1 to 128 letters, digits, '.', '_', ':', '@' or '-', starting with a letter or digit";

const scope = z.string().regex(SCOPE_PATTERN, { message: `expected ${SCOPE_RULE}` });
const modelType = z.string().regex(MODEL_TYPE, { message: `expected ${MODEL_TYPE_RULE}` });
const tenantName = z.string().regex(TENANT, { message: `expected ${TENANT_RULE}` });

const PATTERN_RULE = "expected a value, a glob with '*', or a list of them";
const patternText = z.string().min(1).max(256);
/** A value matched exactly; with `*`, a glob (`*` is any run of characters); a list: any of them. */
const pattern = z.union([patternText, z.array(patternText).min(1)], { error: PATTERN_RULE });

const PRINCIPAL_TYPES = ['role', 'assumed-role', 'user'] as const;
const principalType = z.enum(PRINCIPAL_TYPES);

/** What every rule sets, whatever it matches. */
const decision = {
  /** Names the rule in refusals and logs. */
  name: z.string().min(1).max(128).optional(),
  /** The job's scope, and the last word of its routing key. */
  scope,
  /** The job's priority, 0 (lowest) to 9; absent, the job's default (0). */
  priority: z.number().int().min(0).max(9).optional(),
  /** The model types the identity may publish to; absent, any. */
  modelTypes: z.array(modelType).min(1).optional(),
};

const oidcRule = z
  .object({
    kind: z.literal('oidc'),
    /** Matches the token's issuer. */
    issuer: pattern.optional(),
    /**
     * Matches claims by name (top-level names, taken whole: `https://example.com/org` is one
     * name). A claim that is a list matches when any of its items does.
     */
    claims: z.record(z.string().min(1), pattern).optional(),
    /** A tenant name, or `{ "claim": "<name>" }` to take it from a claim of the token. */
    tenant: z.union([tenantName, z.object({ claim: z.string().min(1) }).strict()], {
      error: `expected a tenant (${TENANT_RULE}) or {"claim": "<claim name>"}`,
    }),
    ...decision,
  })
  .strict();

const iamRule = z
  .object({
    kind: z.literal('aws-iam'),
    /** Matches the principal's 12-digit account id. */
    account: pattern.optional(),
    /** Matches `role`, `assumed-role` or `user`; one or a list. */
    principalType: z
      .union([principalType, z.array(principalType).min(1)], {
        error: `expected ${PRINCIPAL_TYPES.map((t) => JSON.stringify(t)).join(', ')} or a list of them`,
      })
      .optional(),
    /** Matches the role's name (of a role or an assumed role); never matches a user. */
    role: pattern.optional(),
    /** Matches the user's name; never matches a role. */
    user: pattern.optional(),
    /** A tenant name, or `{ "iam": "account" }` / `{ "iam": "role" }` to take it from the principal. */
    tenant: z.union([tenantName, z.object({ iam: z.enum(['account', 'role']) }).strict()], {
      error: `expected a tenant (${TENANT_RULE}), {"iam": "account"} or {"iam": "role"}`,
    }),
    ...decision,
  })
  .strict()
  .refine((rule) => rule.role === undefined || rule.user === undefined, {
    message: 'a rule matches a role or a user, not both: drop one',
    path: ['user'],
  });

/** Checked first, so that a wrong kind is reported as itself, not as the whole rule. */
const kinds = z.array(z.looseObject({ kind: z.enum(['oidc', 'aws-iam']) })).min(1);

/** An ordered list of rules, first match wins: the form they take in a JSON or YAML config. */
export const identityRulesSchema = kinds.pipe(
  z.array(z.discriminatedUnion('kind', [oidcRule, iamRule])),
);

/** Matches OIDC identities. */
export type OidcRule = z.input<typeof oidcRule>;
/** Matches AWS IAM identities. */
export type IamRule = z.input<typeof iamRule>;
/** One rule: what it matches and the tenant, scope, priority and model types it gives. */
export type IdentityRule = OidcRule | IamRule;
/** A value, a glob with `*`, or a list of them (any). */
export type ValuePattern = z.input<typeof pattern>;
