import {
  BrokerUnreachableError,
  type ConnectionListener,
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
  type Transport,
} from '@warren/core';
import { type ChannelModel, connect } from 'amqplib';
import { within } from './abortable.ts';
import { describeCause } from './cause.ts';
import { ChannelConsumer, type Outcome } from './channel-consumer.ts';
import { closeQuietly } from './closing.ts';
import { ConfirmPublisher } from './confirm-publisher.ts';
import { ConnectionEvents } from './connection-events.ts';
import type { Receipt } from './consumer-channel.ts';
import { declareTopology } from './declare.ts';
import { type AmqpTransportOptions, resolveOptions } from './options.ts';
import { toPublishOptions } from './properties.ts';
import { reconnectLoop } from './reconnect-loop.ts';
import type { RecoveryPolicy } from './recovery-policy.ts';

/**
 * - `idle`: not yet connected.
 * - `connected`: one connection, one confirm channel for publishing, one channel per consumer.
 * - `recovering`: the connection was lost; reconnecting with backoff. Publishes wait in the
 *   buffer, subscriptions wait to consume again, other operations wait for the outcome.
 * - `lost`: not recovered in time; every operation fails until a new transport is made.
 * - `closed`: {@link AmqpTransport.close} was called.
 */
type TransportState = 'idle' | 'connected' | 'recovering' | 'lost' | 'closed';

/** The reconnect loop in progress: how to stop it, and when it has ended either way. */
interface Recovery {
  readonly stop: AbortController;
  ended: Promise<void>;
}

/**
 * Warren's {@link Transport} on RabbitMQ, through amqplib. Publishes wait for publisher confirms;
 * each consumer has its own channel and prefetch, and each delivery is settled on the channel
 * that received it. A lost connection is recovered: see {@link AmqpTransportOptions.recovery}.
 */
export class AmqpTransport implements Transport {
  readonly #url: string;
  readonly #broker: string;
  readonly #connectionName: string | undefined;
  readonly #connectTimeoutMs: number;
  readonly #policy: RecoveryPolicy;
  readonly #logger: LogSink;
  readonly #fields: { broker: string; connectionName?: string };
  readonly #publisher: ConfirmPublisher;
  readonly #consumers = new Set<ChannelConsumer>();
  /** Every topology declared, by work queue, to declare again after a reconnect. */
  readonly #topologies = new Map<string, QueueTopology>();
  readonly #receipts = new WeakMap<Delivery, Receipt>();
  readonly #events: ConnectionEvents;
  #state: TransportState = 'idle';
  #connecting: Promise<void> | undefined;
  /** The connection in use, or being restored during recovery. */
  #connection: ChannelModel | undefined;
  #recovery: Recovery | undefined;
  #lostBecause: Error | undefined;
  #closing: Promise<void> | undefined;

  /** The user name the transport connects with (amqplib's default `guest` when none is given). */
  get account(): string {
    return decodeURIComponent(new URL(this.#url).username) || 'guest';
  }

  constructor(options: AmqpTransportOptions) {
    const resolved = resolveOptions(options);
    this.#url = resolved.dialUrl;
    this.#broker = resolved.broker;
    this.#connectionName = resolved.connectionName;
    this.#connectTimeoutMs = resolved.connectTimeoutMs;
    this.#policy = resolved.policy;
    this.#logger = resolved.logger;
    this.#fields = resolved.fields;
    this.#events = new ConnectionEvents(this.#logger, this.#fields);
    this.#publisher = new ConfirmPublisher({
      logger: this.#logger,
      fields: this.#fields,
      limits: resolved.publishBuffer,
    });
  }

  /**
   * Opens the connection and the publish channel. Concurrent calls share one attempt; once
   * connected, further calls resolve at once, and during a recovery they wait for it. Rejects
   * with {@link BrokerUnreachableError}; the first connection is not retried.
   */
  async connect(): Promise<void> {
    while (this.#state === 'recovering') await this.#whenRecovered('connect');
    if (this.#state === 'connected') return;
    this.#requireUsable('connect');
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /**
   * Declares the model type's exchanges, work queue and dead-letter queue; idempotent. The
   * transport declares them again after each reconnect.
   */
  async declare(topology: QueueTopology): Promise<void> {
    const connection = await this.#connected('declare');
    await declareTopology(connection, topology);
    this.#topologies.set(topology.queue, topology);
    this.#logger.debug({ ...this.#fields, queue: topology.queue }, 'topology declared');
  }

  /**
   * Declares an exclusive, server-named queue that the broker deletes with this connection,
   * and so with a lost one: a subscription to it ends with `onCancel` after a reconnect.
   */
  async declareReplyQueue(): Promise<string> {
    const connection = await this.#connected('declareReplyQueue');
    const channel = await connection.createChannel();
    try {
      const { queue } = await channel.assertQueue('', { exclusive: true, durable: false });
      return queue;
    } finally {
      await closeQuietly(channel);
    }
  }

  /**
   * Consumes `queue` on a channel of its own, with manual acknowledgement. The subscription
   * survives a reconnect: it consumes again on a new channel with its current prefetch.
   */
  async consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Subscription> {
    checkPrefetch(options.prefetch);
    const connection = await this.#connected('consume');

    const consumer = await ChannelConsumer.start(
      {
        queue,
        prefetch: options.prefetch,
        onDelivery,
        onCancel: options.onCancel,
        receipts: this.#receipts,
        logger: this.#logger,
        fields: this.#fields,
        onClosed: (closed) => this.#consumers.delete(closed),
      },
      connection,
    );
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
   * During a recovery the message waits in the publish buffer; when that is full the publish
   * rejects at once with {@link PublishBufferFullError}.
   */
  async publish(
    target: PublishTarget,
    body: Buffer,
    properties: MessageProperties,
    options: PublishOptions = {},
  ): Promise<void> {
    this.#requireUsable('publish');
    if (this.#state === 'idle') throw this.#notConnected('publish');
    const publishOptions = toPublishOptions(properties);
    if (options.mandatory) publishOptions.mandatory = true;
    await this.#publisher.publish(target, body, publishOptions);
  }

  /** Acknowledges a delivery on its channel. Never throws; a second settle is ignored. */
  ack(delivery: Delivery): void {
    this.#settle(delivery, { kind: 'ack' });
  }

  /** Rejects a delivery on its channel; without requeue it goes to the dead-letter queue. */
  nack(delivery: Delivery, options: { requeue: boolean }): void {
    this.#settle(delivery, { kind: 'nack', requeue: options.requeue });
  }

  /** Tells `listener` of each loss, reconnect attempt, recovery and give-up; returns its removal. */
  onConnectionEvent(listener: ConnectionListener): () => void {
    return this.#events.add(listener);
  }

  /**
   * Closes every channel and the connection, and stops a recovery in progress. Unsettled
   * deliveries return to their queues; publishes not yet confirmed reject.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #open(): Promise<void> {
    const connection = await this.#dial(this.#connectTimeoutMs);
    this.#connection = connection;
    try {
      await this.#publisher.attach(connection);
      if (this.#connection !== connection) {
        throw this.#lostBecause ?? new Error('the connection closed as it opened');
      }
    } catch (cause) {
      if (this.#connection === connection) this.#connection = undefined;
      await closeQuietly(connection);
      throw this.#unreachable(cause);
    }

    if (this.#state === 'closed') {
      await closeQuietly(connection);
      throw new IllegalStateError('connect: the transport was closed while it connected');
    }
    this.#state = 'connected';
    this.#logger.info(this.#fields, 'broker connected');
  }

  async #dial(timeoutMs: number): Promise<ChannelModel> {
    const clientProperties =
      this.#connectionName === undefined ? {} : { connection_name: this.#connectionName };
    let connection: ChannelModel;
    try {
      connection = await connect(this.#url, { clientProperties, timeout: timeoutMs });
    } catch (cause) {
      throw this.#unreachable(cause);
    }
    this.#watch(connection);
    return connection;
  }

  #watch(connection: ChannelModel): void {
    // amqplib emits 'error' and then 'close' for one loss (a forced close only 'close'), and
    // closes the connection's channels before its 'close'. #onLost reports it once.
    connection.on('error', (error: Error) => this.#onLost(connection, error));
    connection.on('close', (error?: Error) => {
      this.#onLost(connection, error ?? new Error('the broker closed the connection'));
    });
    connection.on('blocked', (reason: string) => {
      this.#logger.warn({ ...this.#fields, reason }, 'broker blocked publishing');
    });
    connection.on('unblocked', () => {
      this.#logger.info(this.#fields, 'broker unblocked publishing');
    });
  }

  /** `connection` is gone: stop using it, and start recovering if it was the live one. */
  #onLost(connection: ChannelModel, cause: Error): void {
    if (connection !== this.#connection) return;
    if (this.#state === 'closed' || this.#state === 'lost') return;
    this.#connection = undefined;
    this.#lostBecause = cause;
    this.#publisher.detach();
    for (const consumer of this.#consumers) consumer.suspend();
    // While connecting or restoring, the attempt under way fails and reports it.
    if (this.#state !== 'connected') return;

    this.#state = 'recovering';
    this.#logger.warn({ ...this.#fields, error: describeCause(cause) }, 'broker connection lost');
    // In place before any listener runs, so that one calling close() stops it.
    const recovery: Recovery = { stop: new AbortController(), ended: Promise.resolve() };
    this.#recovery = recovery;
    this.#events.emit({ type: 'lost', cause });
    recovery.ended = this.#recover(cause, recovery.stop.signal).finally(() => {
      if (this.#recovery === recovery) this.#recovery = undefined;
    });
  }

  async #recover(cause: Error, signal: AbortSignal): Promise<void> {
    const outcome = await reconnectLoop({
      policy: this.#policy,
      cause,
      signal,
      attempt: (giveUpAt) => this.#reconnect(signal, giveUpAt),
      onAttempt: (event) => this.#events.emit(event),
      logger: this.#logger,
      fields: this.#fields,
    });
    if (outcome.kind === 'stopped' || this.#state !== 'recovering') return;
    if (outcome.kind === 'gave-up') {
      this.#giveUp(outcome.cause, outcome.attempts, outcome.downtimeMs);
      return;
    }
    const { attempts, downtimeMs } = outcome;
    this.#state = 'connected';
    this.#logger.info({ ...this.#fields, attempts, downtimeMs }, 'broker connection recovered');
    this.#events.emit({ type: 'recovered', attempts, downtimeMs });
  }

  /** One attempt: a new connection, then everything the old one carried, before `giveUpAt`. */
  async #reconnect(signal: AbortSignal, giveUpAt: number): Promise<void> {
    const timeoutMs = Math.min(this.#connectTimeoutMs, Math.max(1, giveUpAt - Date.now()));
    const discard = (late: ChannelModel): void => {
      void closeQuietly(late);
    };
    const connection = await within(this.#dial(timeoutMs), signal, giveUpAt, discard);
    this.#connection = connection;
    try {
      await within(this.#restore(connection), signal, giveUpAt, () => {});
    } catch (error) {
      this.#onLost(connection, asError(error));
      await closeQuietly(connection);
      throw error;
    }
    if (this.#connection !== connection) {
      // Lost again just as it was restored; that loss was handled, so try once more.
      throw this.#lostBecause ?? new Error('the connection was lost as it was restored');
    }
  }

  /** Declares every topology again, reopens the publish channel and resumes each consumer. */
  async #restore(connection: ChannelModel): Promise<void> {
    // An attempt given up on (timed out, or stopped by close()) may still be running here: it
    // must not hand the publisher or a consumer a connection that is being closed.
    const stale = () => this.#connection !== connection || this.#state === 'closed';
    const giveUpIfStale = () => {
      if (stale())
        throw this.#lostBecause ?? new Error('the connection was replaced as it was restored');
    };
    for (const topology of this.#topologies.values()) {
      try {
        await declareTopology(connection, topology);
      } catch (error) {
        if (this.#connection !== connection) throw error;
        const detail = { ...this.#fields, queue: topology.queue, error: describeCause(error) };
        this.#logger.warn(detail, 'topology not declared again after reconnecting');
      }
    }
    giveUpIfStale();
    await this.#publisher.attach(connection);
    for (const consumer of [...this.#consumers]) {
      giveUpIfStale();
      try {
        await consumer.resume(connection);
      } catch (error) {
        if (this.#connection !== connection) throw error;
        consumer.fail(`after reconnecting to ${this.#broker}, ${describeCause(error)}`);
      }
    }
    if (this.#connection !== connection) {
      throw this.#lostBecause ?? new Error('the connection was lost while it was restored');
    }
  }

  #giveUp(cause: Error, attempts: number, downtimeMs: number): void {
    this.#state = 'lost';
    this.#lostBecause = cause;
    const reason =
      `the connection to ${this.#broker} was lost and not recovered within ` +
      `${this.#policy.giveUpAfterMs} ms (${attempts} attempts): ${describeCause(cause)}`;
    const detail = { ...this.#fields, attempts, downtimeMs, error: describeCause(cause) };
    this.#logger.error(detail, 'broker connection not recovered; giving up');
    this.#publisher.fail(new BrokerUnreachableError(reason, { cause }));
    for (const consumer of [...this.#consumers]) consumer.fail(reason);
    this.#events.emit({ type: 'gave-up', attempts, downtimeMs, cause });
  }

  async #shutdown(): Promise<void> {
    this.#state = 'closed';
    this.#recovery?.stop.abort();
    await this.#connecting?.catch(() => {});
    for (const consumer of this.#consumers) await consumer.close();
    this.#consumers.clear();
    await this.#publisher.close();
    if (this.#connection !== undefined) await closeQuietly(this.#connection);
    await this.#recovery?.ended;
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

  /** The live connection, once any recovery in progress has ended. */
  async #connected(operation: string): Promise<ChannelModel> {
    while (this.#state === 'recovering') await this.#whenRecovered(operation);
    this.#requireUsable(operation);
    if (this.#state !== 'connected' || this.#connection === undefined) {
      throw this.#notConnected(operation);
    }
    return this.#connection;
  }

  async #whenRecovered(operation: string): Promise<void> {
    this.#logger.debug({ ...this.#fields, operation }, 'waiting for the connection to recover');
    await this.#recovery?.ended;
  }

  #notConnected(operation: string): IllegalStateError {
    return new IllegalStateError(
      `${operation}: expected a connected transport, found it ${this.#state}; ` +
        'call connect() first',
    );
  }

  #requireUsable(operation: string): void {
    if (this.#state === 'closed') {
      throw new IllegalStateError(`${operation}: expected an open transport, found it closed`);
    }
    if (this.#state === 'lost') {
      const cause = describeCause(this.#lostBecause);
      throw new BrokerUnreachableError(
        `${operation}: the connection to ${this.#broker} was lost and not recovered within ` +
          `${this.#policy.giveUpAfterMs} ms (${cause}); create a new transport`,
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

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(describeCause(value));
}
