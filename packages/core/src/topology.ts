import type { QueueTopology } from './transport.ts';

/** Naming options shared by producers and workers; both must agree for jobs to arrive. */
export interface TopologyOptions {
  /** Prefix of every exchange and queue name (default `warren`). */
  prefix?: string;
  queueType?: 'quorum' | 'classic';
}

/**
 * The names Warren declares for one model type. Producers publish to a topic exchange with the
 * routing key `<modelType>.<scope>` (see {@link jobRoutingKey}); the model type's queue binds
 * `<modelType>.#`.
 */
export function topologyFor(modelType: string, options: TopologyOptions = {}): QueueTopology {
  const prefix = options.prefix ?? 'warren';
  return {
    jobsExchange: `${prefix}.jobs`,
    queue: `${prefix}.jobs.${modelType}`,
    bindings: [`${modelType}.#`],
    queueType: options.queueType ?? 'quorum',
    deadLetterExchange: `${prefix}.dead-letter`,
    deadLetterQueue: `${prefix}.dead-letter.${modelType}`,
    deadLetterRoutingKey: modelType,
    resultsExchange: `${prefix}.results`,
  };
}

/** The routing key of a job: derived from its model type and scope, never typed by hand. */
export function jobRoutingKey(modelType: string, scope: string): string {
  return `${modelType}.${scope}`;
}
