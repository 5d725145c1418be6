import {
  BrokerUnreachableError,
  ConfigError,
  type ConsumeOptions,
  checkPrefetch,
  type Delivery,
  IllegalStateError,
  type LogSink,
  type MessageProperties,
  type PublishOptions,
  type PublishTarget,
  type QueueTopology,
  type Subscription,
  silentLogSink,
  type Transport,
} from '@warren/core';
import { type ChannelModel, connect } from 'amqplib';
import { describeCause } from './cause.ts';
import { ChannelConsumer, type Outcome, type Receipt } from './channel-consumer.ts';
import { ConfirmPublisher } from './confirm-publisher.ts';
import { declareTopology } from './declare.ts';
import { toPublishOptions } from './properties.ts';
import { amqpUrlProblem, dialUrl, redactUrl } from './url.ts';

export interface AmqpTransportOptions {
  /** `amqp://user:password@host:port/vhost`; logs and errors show it without credentials. */
  url: string;
  /** A pino logger, or anything with its `debug`/`info`/`warn`/`error`; silent by default. */
  logger?: LogSink;
  /** Shown by the broker (management UI, `rabbitmqctl list_connections`) for this connection. */
  connectionName?: string;
  /** Heartbeat interval to ask the broker for; the broker's own suggestion when absent. */
  heartbeatSeconds?: number;
}

/**
 * - `idle`: not yet connected.
 * - `connected`: one connection, one confirm channel for publishing, one channel per consumer.
 * - `lost`: the broker connection dropped; every operation fails until a new transport is made.
 * - `closed`: {@link AmqpTransport.close} was called.
 */
type TransportState = 'idle' | 'connected' | 'lost' | 'closed';

/**
 * Warren's {@link Transport} on RabbitMQ, through amqplib. Publishes wait for publisher confirms;
 * each consumer has its own channel and prefetch, and each delivery is settled on the channel
 * that received it.
 */
export class AmqpTransport implements Transport {
  readonly #url: string;
  readonly #broker: string;
  readonly #connectionName: string | undefined;
  readonly #logger: LogSink;
  readonly #fields: { broker: string; connectionName?: string };
  readonly #consumers = new Set<ChannelConsumer>();
  readonly #receipts = new WeakMap<Delivery, Receipt>();
  #state: TransportState = 'idle';
  #connecting: Promise<void> | undefined;
  #connection: ChannelModel | undefined;
  #publisher: ConfirmPublisher | undefined;
  #lostBecause: Error | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: AmqpTransportOptions) {
    const problem = amqpUrlProblem(options.url);
    if (problem !== undefined) {
      throw new ConfigError(
        `url: expected an amqp:// or amqps:// URL with a host, found ${problem}`,
      );
    }
    const heartbeat = options.heartbeatSeconds;
    if (heartbeat !== undefined && (!Number.isInteger(heartbeat) || heartbeat < 0)) {
      throw new ConfigError(
        `heartbeatSeconds: expected an integer of at least 0, found ${heartbeat}`,
      );
    }
    this.#url = dialUrl(options.url, heartbeat);
    this.#broker = redactUrl(options.url);
    this.#connectionName = options.connectionName;
    this.#logger = options.logger ?? silentLogSink;
    this.#fields =
      options.connectionName === undefined
        ? { broker: this.#broker }
        : { broker: this.#broker, connectionName: options.connectionName };
  }

  /**
   * Opens the connection and the publish channel. Concurrent calls share one attempt; once
   * connected, further calls resolve at once. Rejects with {@link BrokerUnreachableError}.
   */
  async connect(): Promise<void> {
    if (this.#state === 'connected') return;
    this.#requireUsable('connect');
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** Declares the model type's exchanges, work queue and dead-letter queue; idempotent. */
  async declare(topology: QueueTopology): Promise<void> {
    const connection = this.#requireConnected('declare');
    await declareTopology(connection, topology);
    this.#logger.debug({ ...this.#fields, queue: topology.queue }, 'topology declared');
  }

  /** Declares an exclusive, server-named queue that the broker deletes with this connection. */
  async declareReplyQueue(): Promise<string> {
    const connection = this.#requireConnected('declareReplyQueue');
    const channel = await connection.createChannel();
    try {
      const { queue } = await channel.assertQueue('', { exclusive: true, durable: false });
      return queue;
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /** Consumes `queue` on a channel of its own, with manual acknowledgement. */
  async consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Subscription> {
    checkPrefetch(options.prefetch);
    const connection = this.#requireConnected('consume');

    const consumer = await ChannelConsumer.start({
      connection,
      queue,
      prefetch: options.prefetch,
      onDelivery,
      onCancel: options.onCancel,
      receipts: this.#receipts,
      logger: this.#logger,
      fields: this.#fields,
      connectionCause: () => this.#lostBecause,
      onClosed: (closed) => this.#consumers.delete(closed),
    });
    if (this.#state === 'closed') {
      await consumer.close();
      throw new IllegalStateError('consume: the transport was closed while the consumer started');
    }
    this.#consumers.add(consumer);
    return {
      cancel: () => consumer.cancel(),
      setPrefetch: (count) => {
        checkPrefetch(count);
        return consumer.setPrefetch(count);
      },
    };
  }

  /**
   * Publishes a persistent message; resolves once the broker confirms it. With `mandatory`, a
   * message no queue receives rejects with {@link UnroutableError} (it needs a `messageId`).
   */
  async publish(
    target: PublishTarget,
    body: Buffer,
    properties: MessageProperties,
    options: PublishOptions = {},
  ): Promise<void> {
    this.#requireConnected('publish');
    const publishOptions = toPublishOptions(properties);
    if (options.mandatory) publishOptions.mandatory = true;
    await this.#publisher!.publish(target, body, publishOptions);
  }

  /** Acknowledges a delivery on its channel. Never throws; a second settle is ignored. */
  ack(delivery: Delivery): void {
    this.#settle(delivery, { kind: 'ack' });
  }

  /** Rejects a delivery on its channel; without requeue it goes to the dead-letter queue. */
  nack(delivery: Delivery, options: { requeue: boolean }): void {
    this.#settle(delivery, { kind: 'nack', requeue: options.requeue });
  }

  /** Closes every channel and the connection. Unsettled deliveries return to their queues. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #open(): Promise<void> {
    const clientProperties =
      this.#connectionName === undefined ? {} : { connection_name: this.#connectionName };
    let connection: ChannelModel;
    try {
      connection = await connect(this.#url, { clientProperties });
    } catch (cause) {
      throw this.#unreachable(cause);
    }
    this.#watch(connection);

    const publisher = new ConfirmPublisher({
      connection,
      logger: this.#logger,
      fields: this.#fields,
      connectionCause: () => this.#lostBecause,
    });
    try {
      await publisher.open();
    } catch (cause) {
      await connection.close().catch(() => {});
      throw this.#unreachable(cause);
    }

    if (this.#state === 'closed') {
      await connection.close().catch(() => {});
      throw new IllegalStateError('connect: the transport was closed while it connected');
    }
    this.#connection = connection;
    this.#publisher = publisher;
    this.#state = 'connected';
    this.#logger.info(this.#fields, 'broker connected');
  }

  #watch(connection: ChannelModel): void {
    // amqplib emits 'error' and then 'close' for one loss; #onLost reports it once.
    connection.on('error', (error: Error) => this.#onLost(connection, error));
    connection.on('close', (error?: Error) => {
      if (error !== undefined) this.#onLost(connection, error);
    });
    connection.on('blocked', (reason: string) => {
      this.#logger.warn({ ...this.#fields, reason }, 'broker blocked publishing');
    });
    connection.on('unblocked', () => {
      this.#logger.info(this.#fields, 'broker unblocked publishing');
    });
  }

  #onLost(connection: ChannelModel, cause: Error): void {
    if (this.#connection !== connection || this.#state !== 'connected') return;
    this.#state = 'lost';
    this.#lostBecause = cause;
    // Not yet: reconnecting and resubscribing, which needs the consumers to re-declare and resume.
    this.#logger.error({ ...this.#fields, error: describeCause(cause) }, 'broker connection lost');
  }

  async #shutdown(): Promise<void> {
    this.#state = 'closed';
    await this.#connecting?.catch(() => {});
    for (const consumer of this.#consumers) await consumer.close();
    this.#consumers.clear();
    await this.#publisher?.close();
    await this.#connection?.close().catch(() => {});
    this.#logger.info(this.#fields, 'transport closed');
  }

  #settle(delivery: Delivery, outcome: Outcome): void {
    const receipt = this.#receipts.get(delivery);
    if (receipt === undefined) {
      const fields = { ...this.#fields, queue: delivery.queue, deliveryTag: delivery.deliveryTag };
      this.#logger.debug(fields, 'settle ignored: delivery unknown to this transport');
      return;
    }
    receipt.consumer.settle(receipt, outcome);
  }

  #requireConnected(operation: string): ChannelModel {
    this.#requireUsable(operation);
    if (this.#state !== 'connected' || this.#connection === undefined) {
      throw new IllegalStateError(
        `${operation}: expected a connected transport, found it ${this.#state}; ` +
          'call connect() first',
      );
    }
    return this.#connection;
  }

  #requireUsable(operation: string): void {
    if (this.#state === 'closed') {
      throw new IllegalStateError(`${operation}: expected an open transport, found it closed`);
    }
    if (this.#state === 'lost') {
      const cause = describeCause(this.#lostBecause);
      throw new BrokerUnreachableError(
        `${operation}: the connection to ${this.#broker} was lost (${cause}); ` +
          'reconnecting is not supported yet, so create a new transport',
        { cause: this.#lostBecause },
      );
    }
  }

  #unreachable(cause: unknown): BrokerUnreachableError {
    return new BrokerUnreachableError(
      `cannot connect to ${this.#broker}: ${describeCause(cause)}`,
      { cause },
    );
  }
}
