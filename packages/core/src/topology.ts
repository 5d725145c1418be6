import { scopeProblem } from './clearance.ts';
import { DEFAULT_SCOPE } from './envelope.ts';
import { ConfigError } from './errors.ts';
import {
  allRetryDelays,
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
  retryPolicyProblem,
} from './retry.ts';
import type { QueueTopology } from './transport.ts';

/** Naming and queue options shared by producers and workers; both must agree for jobs to arrive. */
export interface TopologyOptions {
  /** Prefix of every exchange and queue name (default `warren`). */
  prefix?: string;
  queueType?: 'quorum' | 'classic';
  /**
   * Highest job priority the work queue honours (1 to 9). RabbitMQ 3.10's quorum queues have no
   * priority: use `queueType: 'classic'` with it, or a separate queue (model type) per priority.
   */
  maxPriority?: number;
  /** Quorum queues: deliveries before the broker dead-letters a message (default 10). */
  deliveryLimit?: number;
  /** Decides the delay queues declared for retries (default {@link DEFAULT_RETRY_POLICY}). */
  retry?: RetryPolicy;
  /**
   * The access scope whose queue this is (default `public`). Each scope of a model type has a
   * queue of its own, bound to its routing key alone, so that a consumer only ever receives the
   * scopes it is cleared for.
   */
  scope?: string;
}

const DEFAULT_DELIVERY_LIMIT = 10;
/** Each distinct delay is a queue on the broker; beyond this many, the policy is a mistake. */
const MAX_DELAY_QUEUES = 64;

/**
 * The names Warren declares for one model type and scope. Producers publish to a topic exchange
 * with the routing key `<modelType>.<scope>` (see {@link jobRoutingKey}), which is bound to that
 * scope's queue alone: `<prefix>.jobs.<modelType>` for `public`, `<prefix>.jobs.<modelType>:<scope>`
 * for any other (its dead-letter and delay queues likewise). Throws {@link ConfigError} for
 * options RabbitMQ would refuse.
 */
export function topologyFor(modelType: string, options: TopologyOptions = {}): QueueTopology {
  const prefix = options.prefix ?? 'warren';
  const queueType = options.queueType ?? 'quorum';
  const retry = options.retry ?? DEFAULT_RETRY_POLICY;
  const problem = retryPolicyProblem(retry);
  if (problem !== undefined) throw new ConfigError(`retry.${problem}`);
  const scope = options.scope ?? DEFAULT_SCOPE;
  const scopeIssue = scopeProblem(scope);
  if (scopeIssue !== undefined) throw new ConfigError(`scope: ${scopeIssue}`);
  // ':' cannot occur in a model type, so no model type's queue can take another's scope's name.
  const family = scope === DEFAULT_SCOPE ? modelType : `${modelType}:${scope}`;

  const topology: QueueTopology = {
    jobsExchange: `${prefix}.jobs`,
    queue: `${prefix}.jobs.${family}`,
    bindings: [jobRoutingKey(modelType, scope)],
    // Before queues were per scope, the public one took them all: that binding must go.
    ...(scope === DEFAULT_SCOPE ? { retiredBindings: [`${modelType}.#`] } : {}),
    queueType,
    deadLetterExchange: `${prefix}.dead-letter`,
    deadLetterQueue: `${prefix}.dead-letter.${family}`,
    deadLetterRoutingKey: family,
    resultsExchange: `${prefix}.results`,
    delayQueues: allRetryDelays(retry).map((delayMs) => ({
      name: `${prefix}.delay.${family}.${delayMs}ms`,
      delayMs,
    })),
  };
  if (options.maxPriority !== undefined) {
    if (queueType === 'quorum') {
      throw new ConfigError(
        'maxPriority: quorum queues have no priority on RabbitMQ 3.10; set queueType "classic", ' +
          'or give urgent jobs a model type (queue) of their own',
      );
    }
    if (
      !Number.isInteger(options.maxPriority) ||
      options.maxPriority < 1 ||
      options.maxPriority > 9
    ) {
      throw new ConfigError(
        `maxPriority: expected an integer from 1 to 9, found ${options.maxPriority}`,
      );
    }
    topology.maxPriority = options.maxPriority;
  }
  if (queueType === 'quorum') {
    topology.deliveryLimit = options.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT;
  } else if (options.deliveryLimit !== undefined) {
    throw new ConfigError(
      'deliveryLimit: only quorum queues have a delivery limit; drop it or use queueType "quorum"',
    );
  }
  if (topology.delayQueues.length > MAX_DELAY_QUEUES) {
    throw new ConfigError(
      `retry: the policy needs ${topology.delayQueues.length} delay queues (one per distinct ` +
        `delay), at most ${MAX_DELAY_QUEUES}; raise the multiplier, lower maxDelayMs or ` +
        'maxAttempts, or set jitter 0',
    );
  }
  return topology;
}

/** The routing key of a job: derived from its model type and scope, never typed by hand. */
export function jobRoutingKey(modelType: string, scope: string): string {
  return `${modelType}.${scope}`;
}
