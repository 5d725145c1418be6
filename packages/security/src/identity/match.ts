import type { IamIdentity, Identity, OidcIdentity } from './identity.ts';
import type { IamRule, IdentityRule, OidcRule, ValuePattern } from './rules-schema.ts';

/** Whether `rule` applies to `identity`: same kind, and every field the rule names matches. */
export function ruleMatches(rule: IdentityRule, identity: Identity): boolean {
  if (rule.kind === 'oidc') return identity.kind === 'oidc' && oidcMatches(rule, identity);
  return identity.kind === 'aws-iam' && iamMatches(rule, identity);
}

function oidcMatches(rule: OidcRule, identity: OidcIdentity): boolean {
  if (rule.issuer !== undefined && !valueMatches(rule.issuer, identity.issuer)) return false;
  for (const [name, wanted] of Object.entries(rule.claims ?? {})) {
    if (!claimMatches(wanted, identity.claims[name])) return false;
  }
  return true;
}

function iamMatches(rule: IamRule, identity: IamIdentity): boolean {
  if (rule.account !== undefined && !valueMatches(rule.account, identity.account)) return false;
  if (rule.principalType !== undefined) {
    const types =
      typeof rule.principalType === 'string' ? [rule.principalType] : rule.principalType;
    if (!types.includes(identity.principalType)) return false;
  }
  const isUser = identity.principalType === 'user';
  if (rule.role !== undefined && (isUser || !valueMatches(rule.role, identity.name))) return false;
  if (rule.user !== undefined && (!isUser || !valueMatches(rule.user, identity.name))) return false;
  return true;
}

/**
 * A claim matches when its value does: a string as it is, a number or boolean as its JSON text,
 * a list when any item does. Objects, null and absent claims never match.
 */
function claimMatches(wanted: ValuePattern, claim: unknown): boolean {
  if (Array.isArray(claim)) return claim.some((item) => claimMatches(wanted, item));
  if (typeof claim === 'string') return valueMatches(wanted, claim);
  if (typeof claim === 'number' || typeof claim === 'boolean') {
    return valueMatches(wanted, String(claim));
  }
  return false;
}

function valueMatches(wanted: ValuePattern, value: string): boolean {
  const patterns = typeof wanted === 'string' ? [wanted] : wanted;
  return patterns.some((pattern) => globMatches(pattern, value));
}

/**
 * `*` stands for any run of characters (none included); every other character is itself. Walks
 * both strings once per star tried, so no pattern backtracks exponentially on a long claim.
 */
export function globMatches(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (pattern[p] === '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.length && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (star !== -1) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
