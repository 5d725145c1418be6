import { randomUUID } from 'node:crypto';
import {
  DEFAULT_RETRY_POLICY,
  HEADERS,
  type MessageProperties,
  type TopologyOptions,
  topologyFor,
} from '@warren/core';
import { type Channel, type ChannelModel, type ConsumeMessage, connect } from 'amqplib';

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** A topology prefix no other test run uses. */
export function uniquePrefix(): string {
  return `test-${randomUUID().slice(0, 8)}`;
}

/**
 * A plain amqplib connection for what a test does beside Warren: publishing raw messages,
 * reading queues, and deleting what the test declared.
 */
export class BrokerProbe {
  private constructor(
    readonly connection: ChannelModel,
    readonly channel: Channel,
  ) {}

  static async open(): Promise<BrokerProbe> {
    const connection = await connect(AMQP_URL);
    return new BrokerProbe(connection, await connection.createChannel());
  }

  /** A server-named, exclusive reply queue and the messages that arrive in it. */
  async replyQueue(): Promise<{ queue: string; messages: ConsumeMessage[] }> {
    const { queue } = await this.channel.assertQueue('', { exclusive: true, autoDelete: true });
    const messages: ConsumeMessage[] = [];
    await this.channel.consume(queue, (message) => message && messages.push(message), {
      noAck: true,
    });
    return { queue, messages };
  }

  /** Collects every message that reaches a queue. */
  async collect(queue: string): Promise<ConsumeMessage[]> {
    const messages: ConsumeMessage[] = [];
    await this.channel.consume(queue, (message) => message && messages.push(message), {
      noAck: true,
    });
    return messages;
  }

  async messageCount(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
    const channel = await this.connection.createChannel();
    try {
      return await channel.checkQueue(queue);
    } finally {
      await channel.close();
    }
  }

  /**
   * Publishes echo jobs (tenant acme, public scope) with these message ids, each asking the
   * handler to take `sleepMs`, and waits for the broker's confirms.
   */
  async publishEchoJobs(
    prefix: string,
    ids: readonly string[],
    options: { replyTo: string; sleepMs: number },
  ): Promise<void> {
    const channel = await this.connection.createConfirmChannel();
    for (const messageId of ids) {
      channel.publish(
        `${prefix}.jobs`,
        'echo.public',
        Buffer.from(JSON.stringify({ text: messageId, sleepMs: options.sleepMs })),
        {
          contentType: 'application/json',
          messageId,
          replyTo: options.replyTo,
          persistent: true,
          headers: { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'echo' },
        },
      );
    }
    await channel.waitForConfirms();
    await channel.close();
  }

  /** Deletes the queues and exchanges Warren declared for these model types under a prefix. */
  async deleteTopology(
    prefix: string,
    modelTypes: string[],
    options: Omit<TopologyOptions, 'prefix'> = {},
  ): Promise<void> {
    const channel = await this.connection.createChannel();
    for (const modelType of modelTypes) {
      const topology = topologyFor(modelType, { ...options, prefix });
      const delayQueues = topology.delayQueues.map((queue) => queue.name);
      for (const queue of [topology.queue, topology.deadLetterQueue, ...delayQueues]) {
        await channel.deleteQueue(queue);
      }
    }
    const topology = topologyFor('any', { prefix });
    for (const exchange of [
      topology.jobsExchange,
      topology.deadLetterExchange,
      topology.resultsExchange,
    ]) {
      await channel.deleteExchange(exchange);
    }
    await channel.close();
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

/** Waits until `condition` holds, polling; fails with `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The environment variable the test configs name in `broker.credentials`. */
export const CREDENTIALS_ENV = 'WARREN_TEST_BROKER_CREDENTIALS';

/**
 * The `broker` section of a test worker config for `url` (default {@link AMQP_URL}): the URL
 * without its password, which a config may not hold, and the credentials read from
 * {@link CREDENTIALS_ENV}. Start the worker with `env: brokerEnv(url)`.
 */
export function testBroker(url: string = AMQP_URL): { url: string; credentials: { env: string } } {
  const bare = new URL(url);
  bare.username = '';
  bare.password = '';
  return { url: bare.href, credentials: { env: CREDENTIALS_ENV } };
}

/** The environment that gives {@link testBroker}'s config the user and password of `url`. */
export function brokerEnv(url: string = AMQP_URL): Record<string, string> {
  const parsed = new URL(url);
  const named = parsed.username !== '' || parsed.password !== '';
  const credentials = {
    username: named ? decodeURIComponent(parsed.username) : 'guest',
    password: named ? decodeURIComponent(parsed.password) : 'guest',
  };
  return { [CREDENTIALS_ENV]: JSON.stringify(credentials) };
}

/** Two attempts 100 ms apart, so that a failing job reaches its dead letter quickly. */
export const TWO_QUICK_ATTEMPTS = {
  ...DEFAULT_RETRY_POLICY,
  maxAttempts: 2,
  initialDelayMs: 100,
  multiplier: 1,
  maxDelayMs: 100,
  jitter: 0,
};

/** A job as a test publishes it by hand: its bytes and AMQP properties. */
export interface RawJob {
  body: Buffer;
  properties: MessageProperties;
}
