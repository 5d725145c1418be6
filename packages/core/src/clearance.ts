import type { JobEnvelope } from './envelope.ts';
import { ForbiddenError, PluginError } from './errors.ts';

/**
 * What a consumer is cleared to serve. A handler declares it (`HandlerSpec.clearance`); a worker
 * config may narrow it, never widen it. Enforced three times: the topology binds a scope's routing
 * key only to the queue of consumers cleared for it, the job's `verifying` step refuses a job
 * outside the clearance, and, where `producers` names the accounts allowed to publish a scope,
 * the broker-validated `user_id` of the job must be one of them.
 */
export interface Clearance {
  /** The access scopes served (default: `public` alone). Each has a queue of its own. */
  scopes: readonly string[];
  /** The tenants served; absent, any tenant. */
  tenants?: readonly string[];
  /**
   * By scope, the broker accounts allowed to publish its jobs, checked against the `user_id`
   * property (RabbitMQ refuses a publish whose `user_id` is not the connection's user). A scope
   * missing here takes jobs from any account.
   */
  producers?: Readonly<Record<string, readonly string[]>>;
}

export const DEFAULT_CLEARANCE: Clearance = Object.freeze({ scopes: Object.freeze(['public']) });

/** A scope is one word of a routing key, so that `<modelType>.<scope>` routes to one queue. */
export const SCOPE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** What is wrong with `scope` as a scope (see {@link SCOPE_PATTERN}), or undefined if nothing. */
export function scopeProblem(scope: unknown): string | undefined {
  if (typeof scope === 'string' && SCOPE_PATTERN.test(scope)) return undefined;
  return `expected lower-case letters, digits, '-' or '_' (1 to 63), found ${JSON.stringify(scope)}`;
}

/** Why `clearance` cannot be used, or undefined when it can. */
export function clearanceProblem(clearance: Clearance): string | undefined {
  if (!Array.isArray(clearance.scopes) || clearance.scopes.length === 0) {
    return 'scopes: expected at least one scope';
  }
  for (const scope of clearance.scopes) {
    const problem = scopeProblem(scope);
    if (problem !== undefined) return `scopes: ${problem}`;
  }
  if (new Set(clearance.scopes).size !== clearance.scopes.length) {
    return 'scopes: expected each scope once';
  }
  if (clearance.tenants !== undefined) {
    if (!Array.isArray(clearance.tenants) || clearance.tenants.length === 0) {
      return 'tenants: expected at least one tenant, or leave tenants out to serve any';
    }
    if (clearance.tenants.some((tenant) => typeof tenant !== 'string' || tenant === '')) {
      return 'tenants: expected non-empty strings';
    }
  }
  for (const [scope, accounts] of Object.entries(clearance.producers ?? {})) {
    if (
      !Array.isArray(accounts) ||
      accounts.length === 0 ||
      accounts.some((a) => typeof a !== 'string' || a === '')
    ) {
      return `producers.${scope}: expected a list of at least one broker user name`;
    }
  }
  return undefined;
}

/** Checks a handler's declared clearance; a plugin with a bad one is refused at load. */
export function checkHandlerClearance(name: string, clearance: Clearance | undefined): void {
  if (clearance === undefined) return;
  const problem = clearanceProblem(clearance);
  if (problem !== undefined) throw new PluginError(`handler ${name}: clearance.${problem}`);
}

/**
 * The clearance a consumer runs with: the handler's, narrowed by `narrower` (from the worker
 * config). Returns a problem instead when `narrower` would serve a scope or tenant the handler
 * does not declare.
 */
export function narrowClearance(
  declared: Clearance,
  narrower: Partial<Clearance> | undefined,
): Clearance | string {
  if (narrower === undefined) return declared;
  const scopes = narrower.scopes ?? declared.scopes;
  const extraScope = scopes.find((scope) => !declared.scopes.includes(scope));
  if (extraScope !== undefined) {
    return `scopes: ${JSON.stringify(extraScope)} is not among the scopes the handler declares (${declared.scopes.join(', ')})`;
  }
  let tenants = narrower.tenants ?? declared.tenants;
  if (narrower.tenants !== undefined && declared.tenants !== undefined) {
    const extraTenant = narrower.tenants.find((tenant) => !declared.tenants!.includes(tenant));
    if (extraTenant !== undefined) {
      return `tenants: ${JSON.stringify(extraTenant)} is not among the tenants the handler declares`;
    }
    tenants = narrower.tenants;
  }
  const producers: Record<string, readonly string[]> = { ...declared.producers };
  for (const [scope, accounts] of Object.entries(narrower.producers ?? {})) {
    if (!scopes.includes(scope)) {
      return `producers.${scope}: expected one of the cleared scopes (${scopes.join(', ')}), found ${JSON.stringify(scope)}`;
    }
    const allowed = declared.producers?.[scope];
    const extra = allowed === undefined ? undefined : accounts.find((a) => !allowed.includes(a));
    if (extra !== undefined) {
      return `producers.${scope}: ${JSON.stringify(extra)} is not among the producers the handler allows (${allowed!.join(', ')})`;
    }
    producers[scope] = accounts;
  }
  const narrowed: Clearance = {
    scopes,
    ...(tenants === undefined ? {} : { tenants }),
    ...(Object.keys(producers).length === 0 ? {} : { producers }),
  };
  return clearanceProblem(narrowed) ?? narrowed;
}

/**
 * Whether a consumer with `clearance` may serve the job; a {@link ForbiddenError} when not.
 * `userId` is the delivery's `user_id`, which the broker has checked against the publishing
 * connection's user.
 */
export function forbiddenFor(
  envelope: JobEnvelope,
  userId: string | undefined,
  clearance: Clearance,
): ForbiddenError | undefined {
  if (!clearance.scopes.includes(envelope.scope)) {
    return new ForbiddenError(
      'scope-not-cleared',
      `scope ${JSON.stringify(envelope.scope)} is not among the scopes this consumer is cleared for (${clearance.scopes.join(', ')})`,
    );
  }
  if (clearance.tenants !== undefined && !clearance.tenants.includes(envelope.tenant)) {
    return new ForbiddenError(
      'tenant-not-cleared',
      `tenant ${JSON.stringify(envelope.tenant)} is not among the tenants this consumer is cleared for`,
    );
  }
  const allowed = clearance.producers?.[envelope.scope];
  if (allowed !== undefined && (userId === undefined || !allowed.includes(userId))) {
    const who = userId === undefined ? 'no user_id' : `user_id ${JSON.stringify(userId)}`;
    return new ForbiddenError(
      'producer-not-allowed',
      `${who}: scope ${JSON.stringify(envelope.scope)} takes jobs only from ${allowed.join(', ')}`,
    );
  }
  return undefined;
}
