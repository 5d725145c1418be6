import type { QueueTopology } from '@warren/core';
import { escapeRegex } from './regex.ts';

/**
 * What one account may touch, as regex fragments (escaped names, or patterns) per permission.
 * An account with several roles gets the union: RabbitMQ holds one triple per user and vhost,
 * and one topic pair per user, vhost and exchange.
 */
export interface Grants {
  configure: Set<string>;
  write: Set<string>;
  read: Set<string>;
  /** Routing-key patterns, by topic exchange. */
  topic: Map<string, { write: Set<string>; read: Set<string> }>;
}

/** The name RabbitMQ checks permissions on for a publish to the default exchange (`""`). */
export const DEFAULT_EXCHANGE = 'amq.default';
/** The names the broker gives server-named queues; clients cannot declare `amq.` names. */
const SERVER_NAMED_QUEUE = 'amq\\.gen-.*';

/** A topology from `topologyFor`, with the model type it was made for. */
export interface ServedTopology {
  modelType: string;
  topology: QueueTopology;
}

export function emptyGrants(): Grants {
  return { configure: new Set(), write: new Set(), read: new Set(), topic: new Map() };
}

/**
 * A worker's grants for the topologies it serves, each operation of `declareTopology`, the
 * consumer and `job-settle` accounted for:
 * - configure: declaring the three shared exchanges, its work, dead-letter and delay queues;
 * - write: binding its work and dead-letter queues (the queue side of a bind is a write);
 *   publishing results, dead letters, and (through the default exchange) retries, deferrals,
 *   give-backs and replies to `reply_to` queues;
 * - read: consuming its work queues; the exchange side of its binds; and, because RabbitMQ asks
 *   for read on a queue declared with a dead-letter exchange, its work and delay queues;
 * - topic: on the jobs exchange it may bind only its own routing keys (a `#` binding of its own
 *   queue would otherwise copy every team's jobs to it); on the results exchange it may publish
 *   only its own model types' results.
 */
export function grantWorker(grants: Grants, served: readonly ServedTopology[]): void {
  for (const { modelType, topology } of served) {
    const delayQueues = topology.delayQueues.map((queue) => queue.name);
    const { jobsExchange, deadLetterExchange, resultsExchange, queue, deadLetterQueue } = topology;

    addNames(grants.configure, jobsExchange, deadLetterExchange, resultsExchange);
    addNames(grants.configure, queue, deadLetterQueue, ...delayQueues);
    addNames(grants.write, queue, deadLetterQueue);
    addNames(grants.write, deadLetterExchange, resultsExchange, DEFAULT_EXCHANGE);
    addNames(grants.read, queue, ...delayQueues, jobsExchange, deadLetterExchange);

    addNames(topicGrant(grants, jobsExchange).read, ...topology.bindings);
    // A result's routing key is `<model type>.<tenant>`, the tenant being whatever the job says.
    topicGrant(grants, resultsExchange).write.add(`${escapeRegex(modelType)}\\..+`);
  }
}

/**
 * A producer's grants: publishing to the jobs exchange, with only the routing keys of the model
 * types and scopes it was given. With `replyQueues`, also declaring and consuming server-named
 * exclusive queues to wait for results in; RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`)
 * needs no grant at all.
 */
export function grantProducer(
  grants: Grants,
  topologies: readonly ServedTopology[],
  replyQueues: boolean,
): void {
  for (const { topology } of topologies) {
    addNames(grants.write, topology.jobsExchange);
    addNames(topicGrant(grants, topology.jobsExchange).write, ...topology.bindings);
  }
  if (replyQueues) {
    grants.configure.add(SERVER_NAMED_QUEUE);
    grants.read.add(SERVER_NAMED_QUEUE);
  }
}

/**
 * A result reader's grants: declaring, binding and consuming its own queues, reading the results
 * exchange, and binding only `<modelType>.<tenant>` or `<modelType>.*` for its model types. No
 * `#`, and no dot in a bound tenant: either could also reach another model type whose name
 * begins with this one's and a dot.
 */
export function grantResultReader(
  grants: Grants,
  resultsExchange: string,
  modelTypes: readonly string[],
  queues: readonly string[],
): void {
  addNames(grants.configure, ...queues);
  addNames(grants.write, ...queues);
  addNames(grants.read, ...queues, resultsExchange);
  const read = topicGrant(grants, resultsExchange).read;
  for (const modelType of modelTypes) read.add(`${escapeRegex(modelType)}\\.(?:\\*|[^.*#]+)`);
}

function addNames(set: Set<string>, ...names: string[]): void {
  for (const name of names) set.add(escapeRegex(name));
}

function topicGrant(grants: Grants, exchange: string): { write: Set<string>; read: Set<string> } {
  let grant = grants.topic.get(exchange);
  if (grant === undefined) {
    grant = { write: new Set(), read: new Set() };
    grants.topic.set(exchange, grant);
  }
  return grant;
}
