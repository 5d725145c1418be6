import {
  ConfigError,
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
  retryPolicyProblem,
  type TopologyOptions,
  topologyFor,
} from '@warren/core';
import type { PermissionsDeclaration } from './declaration.ts';
import {
  emptyGrants,
  type Grants,
  grantProducer,
  grantResultReader,
  grantWorker,
  type ServedTopology,
} from './grants.ts';
import { anchored } from './regex.ts';
import { emptyRoutes, type Routes, record, sorted } from './routes.ts';
import { type WorkerSettings, workerSettings } from './worker-settings.ts';

/** One account's permissions in the vhost: what `set_permissions` and the definitions hold. */
export interface AccountPermissions {
  user: string;
  /** What it is for, as `<team> worker`, `<team> producer` or `<team> result reader`. */
  roles: string[];
  /** The environment variable the rabbitmqctl script reads its password from. */
  passwordEnv: string;
  configure: string;
  write: string;
  read: string;
  /** Routing-key patterns by topic exchange: what `set_topic_permissions` holds. */
  topic: TopicPermission[];
}

export interface TopicPermission {
  exchange: string;
  write: string;
  read: string;
}

/** Everything generated from one declaration. */
export interface PermissionsPlan {
  vhost: string;
  accounts: AccountPermissions[];
  /** What each worker account's config needs: `security.relays` and handler clearances. */
  workers: WorkerSettings[];
  /** Declared but odd: a scope that no producer publishes, or that no worker serves. */
  warnings: string[];
}

interface Account {
  grants: Grants;
  roles: string[];
}

/**
 * Computes each account's least-privilege permissions from a validated declaration, every name
 * derived with `topologyFor` as the workers and producers derive it. Throws {@link ConfigError}
 * naming the field for what only shows once names are derived: a retry policy `topologyFor`
 * refuses, a reader queue that is one of Warren's own, two accounts that would share a password
 * variable.
 */
export function planPermissions(declaration: PermissionsDeclaration): PermissionsPlan {
  const planning: Planning = {
    declaration,
    accounts: new Map(),
    routes: emptyRoutes(),
    warrenNames: new Set(),
  };
  for (const [t, team] of declaration.teams.entries()) {
    for (const [w, worker] of team.workers.entries()) {
      planWorker(planning, worker, `${team.name} worker`, `declaration.teams[${t}].workers[${w}]`);
    }
    for (const [p, producer] of team.producers.entries()) {
      const path = `declaration.teams[${t}].producers[${p}]`;
      planProducer(planning, producer, `${team.name} producer`, path);
    }
  }
  // Once every topology is known, so that no reader queue can take one of their names.
  for (const [t, team] of declaration.teams.entries()) {
    for (const [r, reader] of team.resultReaders.entries()) {
      const path = `declaration.teams[${t}].resultReaders[${r}]`;
      planReader(planning, reader, `${team.name} result reader`, path);
    }
  }

  const { accounts, routes } = planning;
  const planned = sorted(accounts.keys()).map((user) => permissionsOf(user, accounts.get(user)!));
  checkPasswordVariables(planned);
  return {
    vhost: declaration.vhost,
    accounts: planned,
    workers: workerSettings(routes),
    warnings: warningsOf(routes),
  };
}

/** What {@link planPermissions} gathers as it goes through the declaration. */
interface Planning {
  declaration: PermissionsDeclaration;
  accounts: Map<string, Account>;
  routes: Routes;
  /** Every name `topologyFor` gave, which no reader's queue may take. */
  warrenNames: Set<string>;
}

type Team = PermissionsDeclaration['teams'][number];

function planWorker(
  planning: Planning,
  worker: Team['workers'][number],
  role: string,
  path: string,
): void {
  const retry = retryFor(planning.declaration, worker.retry, path);
  const served = planEntry(planning, worker, { retry }, planning.routes.served, path);
  grantWorker(accountOf(planning, worker.user, role).grants, served);
}

function planProducer(
  planning: Planning,
  producer: Team['producers'][number],
  role: string,
  path: string,
): void {
  const published = planEntry(planning, producer, {}, planning.routes.published, path);
  grantProducer(accountOf(planning, producer.user, role).grants, published, producer.replyQueues);
}

/**
 * What a worker and a producer entry share: the topologies of its model types and scopes, whose
 * names no reader's queue may take, and the routes it serves or publishes to, under its user.
 */
function planEntry(
  planning: Planning,
  entry: { user: string; modelTypes: string[]; scopes: string[] },
  options: Omit<TopologyOptions, 'prefix'>,
  routes: Routes['served'],
  path: string,
): ServedTopology[] {
  const { declaration, warrenNames } = planning;
  const planned = topologies(entry, { prefix: declaration.prefix, ...options }, path);
  for (const name of planned.flatMap(namesOf)) warrenNames.add(name);
  for (const { modelType, scope } of pairs(entry)) record(routes, modelType, scope, entry.user);
  return planned;
}

function planReader(
  planning: Planning,
  reader: Team['resultReaders'][number],
  role: string,
  path: string,
): void {
  for (const [q, queue] of reader.queues.entries()) {
    if (planning.warrenNames.has(queue)) {
      throw new ConfigError(
        `${path}.queues[${q}]: expected a queue of the reader's own, found ${JSON.stringify(queue)}, a name of Warren's topology`,
      );
    }
  }
  const { resultsExchange } = topologyFor(reader.modelTypes[0]!, {
    prefix: planning.declaration.prefix,
  });
  const { grants } = accountOf(planning, reader.user, role);
  grantResultReader(grants, resultsExchange, reader.modelTypes, reader.queues);
}

/** The account of `user`, made on first use, with `role` added to what it is for. */
function accountOf(planning: Planning, user: string, role: string): Account {
  let found = planning.accounts.get(user);
  if (found === undefined) {
    found = { grants: emptyGrants(), roles: [] };
    planning.accounts.set(user, found);
  }
  found.roles.push(role);
  return found;
}

/** The environment variable holding an account's password: `WARREN_PASSWORD_<USER>`. */
export function passwordVariable(user: string): string {
  return `WARREN_PASSWORD_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function permissionsOf(user: string, { grants, roles }: Account): AccountPermissions {
  return {
    user,
    roles,
    passwordEnv: passwordVariable(user),
    configure: anchored(grants.configure),
    write: anchored(grants.write),
    read: anchored(grants.read),
    topic: sorted(grants.topic.keys()).map((exchange) => {
      const grant = grants.topic.get(exchange)!;
      return { exchange, write: anchored(grant.write), read: anchored(grant.read) };
    }),
  };
}

function retryFor(
  declaration: PermissionsDeclaration,
  own: Partial<RetryPolicy> | undefined,
  path: string,
): RetryPolicy {
  const retry = { ...DEFAULT_RETRY_POLICY, ...declaration.retry, ...own };
  const problem = retryPolicyProblem(retry);
  if (problem !== undefined) {
    throw new ConfigError(`${own === undefined ? 'declaration' : path}.retry.${problem}`);
  }
  return retry;
}

function pairs(entry: { modelTypes: string[]; scopes: string[] }) {
  return entry.modelTypes.flatMap((modelType) =>
    entry.scopes.map((scope) => ({ modelType, scope })),
  );
}

/** Each model type and scope's topology, as `topologyFor` names it. */
function topologies(
  entry: { modelTypes: string[]; scopes: string[] },
  options: TopologyOptions,
  path: string,
): ServedTopology[] {
  return pairs(entry).map(({ modelType, scope }) => {
    try {
      return { modelType, topology: topologyFor(modelType, { ...options, scope }) };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new ConfigError(`${path}: ${error.message} (model type ${modelType})`, {
        cause: error,
      });
    }
  });
}

/** The names of a topology: exchanges, work, dead-letter and delay queues. */
function namesOf({ topology }: ServedTopology): string[] {
  return [
    topology.jobsExchange,
    topology.deadLetterExchange,
    topology.resultsExchange,
    topology.queue,
    topology.deadLetterQueue,
    ...topology.delayQueues.map((queue) => queue.name),
  ];
}

function checkPasswordVariables(accounts: AccountPermissions[]): void {
  const owners = new Map<string, string>();
  for (const { user, passwordEnv } of accounts) {
    const other = owners.get(passwordEnv);
    if (other !== undefined) {
      throw new ConfigError(
        `declaration: accounts ${JSON.stringify(other)} and ${JSON.stringify(user)} would both ` +
          `take their password from ${passwordEnv}; expected names that differ in more than ` +
          'case and punctuation',
      );
    }
    owners.set(passwordEnv, user);
  }
}

function warningsOf({ served, published }: Routes): string[] {
  const warnings: string[] = [];
  for (const [modelType, byScope] of served) {
    for (const [scope, workers] of byScope) {
      if (published.get(modelType)?.has(scope)) continue;
      warnings.push(
        `${modelType} scope ${scope}: served by ${sorted(workers).join(', ')}, but no ` +
          'producer in the declaration may publish it; its clearance names no producers, so ' +
          'its workers would take a job for it from any account that reaches the queue',
      );
    }
  }
  for (const [modelType, byScope] of published) {
    for (const [scope, producers] of byScope) {
      if (served.get(modelType)?.has(scope)) continue;
      warnings.push(
        `${modelType} scope ${scope}: published by ${sorted(producers).join(', ')}, but no ` +
          'worker in the declaration serves it; its jobs would reach no queue',
      );
    }
  }
  // A worker may publish results under `<its model type>.<anything>`, tenants holding dots.
  const modelTypes = [...new Set([...served.keys(), ...published.keys()])].sort();
  for (const shorter of modelTypes) {
    for (const longer of modelTypes) {
      if (!longer.startsWith(`${shorter}.`)) continue;
      warnings.push(
        `model types ${shorter} and ${longer}: a worker of ${shorter} may publish results under ` +
          `${shorter}.<tenant>, which covers ${longer}'s results (${longer}.<tenant>); give one ` +
          'of them another name if their workers belong to different teams',
      );
    }
  }
  return warnings;
}
