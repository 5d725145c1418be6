import { randomUUID } from 'node:crypto';
import type { LogSink } from '@warren/core';
import { type QueueTopology, topologyFor } from '@warren/core';
import type { FaultProxy } from '@warren/testing';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { AmqpTransport, type AmqpTransportOptions, redactUrl } from '../src/index.ts';

/** The broker the tests run against; a test that finds none fails. */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** One log call, as a test sees it. */
export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

/** A logger that keeps what it is given. */
export class RecordingLogger implements LogSink {
  readonly entries: LogEntry[] = [];

  debug(fields: object, message: string): void {
    this.#record('debug', fields, message);
  }
  info(fields: object, message: string): void {
    this.#record('info', fields, message);
  }
  warn(fields: object, message: string): void {
    this.#record('warn', fields, message);
  }
  error(fields: object, message: string): void {
    this.#record('error', fields, message);
  }

  messages(level: LogEntry['level']): string[] {
    return this.entries.filter((entry) => entry.level === level).map((entry) => entry.message);
  }

  #record(level: LogEntry['level'], fields: object, message: string): void {
    this.entries.push({ level, fields: { ...fields }, message });
  }
}

/**
 * Everything one test file needs from the broker: transports that are closed after each test,
 * unique topologies whose queues and exchanges are deleted after each test, and a plain amqplib
 * channel for looking at the broker from outside the transport.
 */
export class BrokerFixture {
  #admin: ChannelModel | undefined;
  #channel: Channel | undefined;
  readonly #transports: AmqpTransport[] = [];
  readonly #channels: Channel[] = [];
  readonly #queues = new Set<string>();
  readonly #exchanges = new Set<string>();

  /**
   * Connects once; run before each test, so that without a broker every test fails (a failing
   * `beforeAll` would only mark them skipped).
   */
  async start(): Promise<void> {
    if (this.#channel !== undefined) return;
    try {
      this.#admin = await connect(AMQP_URL);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message || cause.name : String(cause);
      throw new Error(
        `these tests need RabbitMQ at ${redactUrl(AMQP_URL)} (set AMQP_URL): ${reason}`,
        { cause },
      );
    }
    this.#channel = await this.#admin.createChannel();
  }

  /** A plain channel on a connection of its own. */
  get admin(): Channel {
    if (this.#channel === undefined) throw new Error('BrokerFixture.start() was not called');
    return this.#channel;
  }

  /** Another plain channel on the admin connection, closed after the test. */
  async channel(): Promise<Channel> {
    if (this.#admin === undefined) throw new Error('BrokerFixture.start() was not called');
    const channel = await this.#admin.createChannel();
    this.#channels.push(channel);
    return channel;
  }

  /** A connected transport, closed after the test. */
  async transport(options: Partial<AmqpTransportOptions> = {}): Promise<AmqpTransport> {
    const transport = this.unconnected(options);
    await transport.connect();
    return transport;
  }

  /** A transport not yet connected, closed after the test. */
  unconnected(options: Partial<AmqpTransportOptions> = {}): AmqpTransport {
    const transport = new AmqpTransport({ url: AMQP_URL, ...options });
    this.#transports.push(transport);
    return transport;
  }

  /** A topology with names no other test uses, deleted after the test. */
  topology(modelType = 'feature-extraction', queueType?: 'quorum' | 'classic'): QueueTopology {
    const prefix = `test-${randomUUID()}`;
    const topology = topologyFor(modelType, queueType ? { prefix, queueType } : { prefix });
    this.forget({
      queues: [
        topology.queue,
        topology.deadLetterQueue,
        ...topology.delayQueues.map((q) => q.name),
      ],
      exchanges: [topology.jobsExchange, topology.deadLetterExchange, topology.resultsExchange],
    });
    return topology;
  }

  /** Queues and exchanges to delete after the test. */
  forget(names: { queues?: string[]; exchanges?: string[] }): void {
    for (const queue of names.queues ?? []) this.#queues.add(queue);
    for (const exchange of names.exchanges ?? []) this.#exchanges.add(exchange);
  }

  /** Closes the test's transports and deletes what it declared. */
  async cleanUp(): Promise<void> {
    for (const transport of this.#transports.splice(0)) await transport.close();
    for (const channel of this.#channels.splice(0)) await channel.close().catch(() => {});
    for (const queue of this.#queues) await this.admin.deleteQueue(queue);
    for (const exchange of this.#exchanges) await this.admin.deleteExchange(exchange);
    this.#queues.clear();
    this.#exchanges.clear();
  }

  async stop(): Promise<void> {
    await this.#admin?.close();
  }
}

/** Where the broker listens, for a {@link FaultProxy} to forward to. */
export function brokerAddress(): { host: string; port: number } {
  const url = new URL(AMQP_URL);
  return { host: url.hostname, port: Number(url.port || 5672) };
}

/** {@link AMQP_URL} with its host and port replaced by the proxy's. */
export function urlThrough(proxy: FaultProxy): string {
  const url = new URL(AMQP_URL);
  url.hostname = proxy.host;
  url.port = String(proxy.port);
  return url.href;
}

/** Resolves once `condition` holds; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
