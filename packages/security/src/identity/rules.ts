import { ConfigError, describeIssues, IdentityRefusedError, jobRoutingKey } from '@warren/core';
import { type Identity, quote } from './identity.ts';
import { ruleMatches } from './match.ts';
import {
  type IdentityRule,
  identityRulesSchema,
  MODEL_TYPE,
  MODEL_TYPE_RULE,
  TENANT,
  TENANT_RULE,
} from './rules-schema.ts';

/** What the rules decide for one identity and model type: the job's routing fields. */
export interface IdentityRoute {
  modelType: string;
  tenant: string;
  scope: string;
  /** Absent when the rule sets none: the job then gets the default, 0. */
  priority?: number;
  /** `<modelType>.<scope>`, from `jobRoutingKey`: where `JobPublisher` will publish the job. */
  routingKey: string;
  /** The rule that decided: its place in the list (from 0) and its name, if it has one. */
  rule: { index: number; name?: string };
}

/**
 * Declarative rules from identity to routing: an ordered list, first match wins. A rule matches
 * an identity's kind and fields (OIDC issuer and claims; IAM account, principal type, role or
 * user name) and gives the tenant (written in the rule, or taken from a claim or the principal),
 * the scope, optionally a priority and the model types allowed. Nothing is ever defaulted: no
 * rule matching, a model type the matching rule does not allow, or a tenant it cannot take are
 * each refused `no-rule`.
 */
export class IdentityRules {
  readonly #rules: readonly IdentityRule[];

  /** Checks the rules; throws {@link ConfigError} naming the field at fault (`rules[2].scope`). */
  constructor(rules: readonly IdentityRule[], source = 'rules') {
    this.#rules = parseRules(rules, source);
  }

  /** Rules read from a config file (parsed JSON or YAML), checked the same way. */
  static parse(value: unknown, source = 'rules'): IdentityRules {
    return new IdentityRules(parseRules(value, source), source);
  }

  /** Where a job of `modelType` from `identity` goes; throws {@link IdentityRefusedError}. */
  route(identity: Identity, modelType: string): IdentityRoute {
    if (typeof modelType !== 'string' || !MODEL_TYPE.test(modelType)) {
      throw new IdentityRefusedError(
        'no-rule',
        `model type ${quote(modelType)}: expected ${MODEL_TYPE_RULE}`,
      );
    }
    const index = this.#rules.findIndex((rule) => ruleMatches(rule, identity));
    const rule = this.#rules[index];
    if (rule === undefined) {
      throw new IdentityRefusedError('no-rule', `no rule matches ${describeIdentity(identity)}`);
    }

    const which = ruleName(index, rule);
    if (rule.modelTypes !== undefined && !rule.modelTypes.includes(modelType)) {
      throw new IdentityRefusedError(
        'no-rule',
        `${which} matches ${describeIdentity(identity)} but does not allow model type ` +
          `${quote(modelType)}; it allows ${rule.modelTypes.join(', ')}`,
      );
    }
    return {
      modelType,
      tenant: tenantOf(rule, identity, which),
      scope: rule.scope,
      ...(rule.priority === undefined ? {} : { priority: rule.priority }),
      routingKey: jobRoutingKey(modelType, rule.scope),
      rule: rule.name === undefined ? { index } : { index, name: rule.name },
    };
  }
}

function parseRules(value: unknown, source: string): IdentityRule[] {
  const parsed = identityRulesSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(describeIssues(parsed.error, { root: source, showValues: true }));
  }
  return parsed.data;
}

/** The rule's tenant; a tenant it is to take but cannot is refused, never replaced. */
function tenantOf(rule: IdentityRule, identity: Identity, which: string): string {
  if (typeof rule.tenant === 'string') return rule.tenant;

  let from: string;
  let value: unknown;
  if ('claim' in rule.tenant) {
    from = `claim ${quote(rule.tenant.claim)}`;
    value = identity.kind === 'oidc' ? identity.claims[rule.tenant.claim] : undefined;
  } else {
    from = `the IAM ${rule.tenant.iam}`;
    if (identity.kind === 'aws-iam') {
      const isRole = identity.principalType !== 'user';
      value = rule.tenant.iam === 'account' ? identity.account : isRole ? identity.name : undefined;
    }
  }

  if (value === undefined) {
    throw new IdentityRefusedError(
      'no-rule',
      `${which} takes the tenant from ${from}, but ${describeIdentity(identity)} has none`,
    );
  }
  if (typeof value !== 'string' || !TENANT.test(value)) {
    throw new IdentityRefusedError(
      'no-rule',
      `${which} takes the tenant from ${from}: expected ${TENANT_RULE}, found ${quote(value)}`,
    );
  }
  return value;
}

function ruleName(index: number, rule: IdentityRule): string {
  return rule.name === undefined ? `rules[${index}]` : `rules[${index}] (${quote(rule.name)})`;
}

function describeIdentity(identity: Identity): string {
  if (identity.kind === 'oidc') {
    return `OIDC subject ${quote(identity.subject)} of ${quote(identity.issuer)}`;
  }
  return `IAM ${identity.principalType} ${quote(identity.arn)}`;
}
