import { encodeJob, type JobSpec } from './envelope.ts';
import { jobRoutingKey, type TopologyOptions, topologyFor } from './topology.ts';
import type { Transport } from './transport.ts';

/** What {@link JobPublisher.publish} returns: enough to match the result to the job. */
export interface PublishedJob {
  messageId: string;
  routingKey: string;
}

/**
 * Publishes jobs the way workers expect them: envelope headers set, routing key derived from
 * model type and scope, and the broker's confirm awaited.
 */
export class JobPublisher {
  readonly #transport: Transport;
  readonly #topology: TopologyOptions;

  constructor(transport: Transport, topology: TopologyOptions = {}) {
    this.#transport = transport;
    this.#topology = topology;
  }

  async publish(spec: JobSpec): Promise<PublishedJob> {
    const { body, properties } = encodeJob(spec);
    const routingKey = jobRoutingKey(spec.modelType, spec.scope ?? 'public');
    const { jobsExchange } = topologyFor(spec.modelType, this.#topology);
    await this.#transport.publish({ exchange: jobsExchange, routingKey }, body, properties);
    return { messageId: properties.messageId!, routingKey };
  }
}
