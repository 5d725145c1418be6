import { randomBytes } from 'node:crypto';
import { AmqpTransport } from '@warren/amqp';
import { encodeJob, JobPublisher, type QueueTopology, topologyFor } from '@warren/core';
import { type Channel, type ChannelModel, connect } from 'amqplib';

/** The broker every figure runs against; loopback unless AMQP_URL says otherwise. */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Jobs published but not yet confirmed, at most, while filling a queue. */
const PUBLISH_WINDOW = 2_000;

/**
 * Everything one bench run declares on the broker, under a prefix of its own, so that two runs
 * never share a queue and {@link BenchBroker.cleanUp} deletes exactly what this run made.
 */
export class BenchBroker {
  readonly prefix = `warren-bench-${randomBytes(4).toString('hex')}`;
  readonly #topologies = new Map<string, QueueTopology>();
  readonly #queues = new Set<string>();
  #admin: ChannelModel | undefined;

  /** The names Warren's consumer declares for `modelType` under this run's prefix. */
  topology(modelType: string): QueueTopology {
    let topology = this.#topologies.get(modelType);
    if (topology === undefined) {
      topology = topologyFor(modelType, { prefix: this.prefix });
      this.#topologies.set(modelType, topology);
    }
    return topology;
  }

  /** A transport of our own product, for declaring and publishing. */
  transport(connectionName: string): AmqpTransport {
    return new AmqpTransport({ url: AMQP_URL, connectionName });
  }

  /** A plain amqplib connection (for baselines and broker administration). */
  async connectPlain(connectionName: string): Promise<ChannelModel> {
    return connect(AMQP_URL, { clientProperties: { connection_name: connectionName } });
  }

  /** Declares `modelType`'s topology and a durable queue for results named `<prefix>.<name>`. */
  async declare(modelType: string, resultsQueue: string): Promise<string> {
    const transport = this.transport('warren-bench-declare');
    await transport.connect();
    try {
      await transport.declare(this.topology(modelType));
    } finally {
      await transport.close();
    }
    const name = `${this.prefix}.${resultsQueue}`;
    await this.#withChannel(async (channel) => {
      await channel.assertQueue(name, { durable: true });
    });
    this.#queues.add(name);
    return name;
  }

  /**
   * Publishes `count` jobs to `modelType`'s queue through {@link JobPublisher}, each confirmed,
   * with at most {@link PUBLISH_WINDOW} unconfirmed at a time.
   */
  async fill(
    modelType: string,
    count: number,
    jobInput: (index: number) => unknown,
    replyTo: string | undefined,
  ): Promise<void> {
    const transport = this.transport('warren-bench-fill');
    await transport.connect();
    const publisher = new JobPublisher(transport, { prefix: this.prefix });
    try {
      const inFlight = new Set<Promise<unknown>>();
      for (let index = 0; index < count; index += 1) {
        const publish = publisher.publish({
          modelType,
          tenant: 'bench',
          input: jobInput(index),
          ...(replyTo === undefined ? {} : { replyTo }),
        });
        inFlight.add(publish);
        void publish.finally(() => inFlight.delete(publish)).catch(() => {});
        if (inFlight.size >= PUBLISH_WINDOW) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } finally {
      await transport.close();
    }
  }

  /** Messages ready in a queue. */
  async depth(queue: string): Promise<number> {
    return this.#withChannel(async (channel) => (await channel.checkQueue(queue)).messageCount);
  }

  async purge(queue: string): Promise<void> {
    await this.#withChannel(async (channel) => {
      await channel.purgeQueue(queue);
    });
  }

  /** Deletes every queue and exchange this run declared. */
  async cleanUp(): Promise<void> {
    const queues = [...this.#queues];
    const exchanges = new Set<string>();
    for (const topology of this.#topologies.values()) {
      queues.push(topology.queue, topology.deadLetterQueue);
      queues.push(...topology.delayQueues.map((delay) => delay.name));
      exchanges.add(topology.jobsExchange);
      exchanges.add(topology.deadLetterExchange);
      exchanges.add(topology.resultsExchange);
    }
    await this.#withChannel(async (channel) => {
      for (const queue of queues) await channel.deleteQueue(queue);
      for (const exchange of exchanges) await channel.deleteExchange(exchange);
    });
    await this.#admin?.close();
    this.#admin = undefined;
  }

  async #withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
    this.#admin ??= await this.connectPlain('warren-bench-admin');
    const channel = await this.#admin.createChannel();
    try {
      return await work(channel);
    } finally {
      await channel.close().catch(() => {});
    }
  }
}

/** A job body of exactly `bytes` bytes of JSON: `{"text":"xxx…"}`. */
export function paddedInput(bytes: number): { text: string } {
  const overhead = JSON.stringify({ text: '' }).length;
  return { text: 'x'.repeat(Math.max(1, bytes - overhead)) };
}

/** The encoded size of a job body, for the report. */
export function bodyBytes(input: unknown): number {
  return encodeJob({ modelType: 'size', tenant: 'bench', input }).body.length;
}
