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
import type { ChannelModel } from 'amqplib';
import { within } from './abortable.ts';
import { describeCause } from './cause.ts';
import { ChannelConsumer, type Outcome } from './channel-consumer.ts';
import { closeQuietly } from './closing.ts';
import { ConfirmPublisher } from './confirm-publisher.ts';
import { ConnectionEvents } from './connection-events.ts';
import { CredentialRotation, RotationFailure } from './credential-rotation.ts';
import type { CredentialsProvider } from './credentials.ts';
import { declareTopology } from './declare.ts';
import { AmqpDelivery } from './delivery.ts';
import { Dialer } from './dialer.ts';
import { type AmqpTransportOptions, resolveOptions } from './options.ts';
import { toPublishOptions } from './properties.ts';
import { reconnectLoop } from './reconnect-loop.ts';
import type { RecoveryPolicy } from './recovery-policy.ts';
import { RetiredConnections } from './retired-connections.ts';

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
 * With {@link AmqpTransportOptions.credentials}, it can move to new credentials without losing
 * work: see {@link AmqpTransport.rotateCredentials}.
 */
export class AmqpTransport implements Transport {
  readonly #broker: string;
  readonly #credentials: CredentialsProvider | undefined;
  readonly #dialer: Dialer;
  readonly #rotation: CredentialRotation;
  #stopWatching: (() => void) | undefined;
  /** The reads that a rotation asked for must come after this one. */
  #rotationAfter = 0;
  /** A connection being made ready by a rotation, not yet in use. */
  #rotating: ChannelModel | undefined;
  /** Connections replaced by a rotation, each closed once nothing of it is in use. */
  readonly #retired: RetiredConnections;
  /** Consumers starting: a rotation waits for them before it closes their connection. */
  readonly #starting = new Set<Promise<unknown>>();
  readonly #connectTimeoutMs: number;
  readonly #policy: RecoveryPolicy;
  readonly #logger: LogSink;
  readonly #fields: { broker: string; connectionName?: string };
  readonly #publisher: ConfirmPublisher;
  readonly #consumers = new Set<ChannelConsumer>();
  /** Every topology declared, by work queue, to declare again after a reconnect. */
  readonly #topologies = new Map<string, QueueTopology>();
  readonly #events: ConnectionEvents;
  #state: TransportState = 'idle';
  #connecting: Promise<void> | undefined;
  /** The connection in use, or being restored during recovery. */
  #connection: ChannelModel | undefined;
  #recovery: Recovery | undefined;
  #lostBecause: Error | undefined;
  #closing: Promise<void> | undefined;

  /**
   * The user name the transport connects as: that of the connection in use, else the one it
   * dials with next (the URL's, amqplib's default `guest` when it names none, or the credentials
   * read last); with a credentials provider that has not been read yet, the provider's
   * `username`, if it tells.
   */
  get account(): string | undefined {
    if (this.#connection !== undefined) return this.#dialer.usernameOf(this.#connection);
    return this.#dialer.nextUsername;
  }

  constructor(options: AmqpTransportOptions) {
    const resolved = resolveOptions(options);
    this.#broker = resolved.broker;
    this.#credentials = resolved.credentials;
    this.#dialer = new Dialer({
      url: resolved.dialUrl,
      broker: resolved.broker,
      urlUsername: resolved.urlUsername,
      connectionName: resolved.connectionName,
      credentials: resolved.credentials,
      onFallBack: (refused, used, cause) => {
        const detail = { ...resolved.fields, refused, used, error: describeCause(cause) };
        resolved.logger.warn(
          detail,
          'broker refused the credentials read now; connected with the ones that last worked',
        );
      },
    });
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
    this.#retired = new RetiredConnections(
      {
        publisher: this.#publisher,
        consumers: () => this.#consumers,
        starting: () => this.#starting,
      },
      this.#logger,
      this.#fields,
    );
    this.#rotation = new CredentialRotation({
      attempt: () => this.#rotateOnce(),
      retry: resolved.rotationRetry,
      events: this.#events,
      logger: this.#logger,
      fields: this.#fields,
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
    const left = await declareTopology(connection, topology);
    for (const pattern of left) {
      const detail = {
        ...this.#fields,
        queue: topology.queue,
        exchange: topology.jobsExchange,
        pattern,
      };
      this.#logger.warn(
        detail,
        'this account may not remove the binding an earlier version made, if there is one: check for it and remove it by hand',
      );
    }
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

    const starting = ChannelConsumer.start(
      {
        queue,
        prefetch: options.prefetch,
        onDelivery,
        onCancel: options.onCancel,
        owner: this,
        logger: this.#logger,
        fields: this.#fields,
        onClosed: (closed) => this.#consumers.delete(closed),
      },
      connection,
    );
    this.#starting.add(starting);
    let consumer: ChannelConsumer;
    try {
      consumer = await starting;
    } finally {
      this.#starting.delete(starting);
    }
    if (this.#state === 'closed') {
      await consumer.close();
      throw new IllegalStateError('consume: the transport was closed while the consumer started');
    }
    this.#consumers.add(consumer);
    // A rotation replaced the connection while the consumer started on it.
    const live = this.#connection;
    if (this.#state === 'connected' && live !== undefined && live !== connection) {
      // Lost meanwhile: the recovery moves it with the others.
      await this.#follow(consumer, live).catch(() => {});
    }
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

  /**
   * Moves to new credentials without losing work: reads them from
   * {@link AmqpTransportOptions.credentials}, dials a new connection with them and declares every
   * known topology on it; then publishes go on a confirm channel of the new connection (those
   * sent on the old one are confirmed there), and each subscription starts consuming there and
   * cancels its old consumer, whose channel stays open until every delivery it handed out is
   * settled. The old connection closes once none of its channels is left. Resolves once the new
   * connection carries publishing and every subscription.
   *
   * When the new connection cannot be made ready (the broker refuses the login, say), the old
   * one goes on untouched, a `rotation-failed` event is reported, the promise rejects, and the
   * rotation is tried again after a backoff ({@link AmqpTransportOptions.rotationRetry}) or at
   * the next call. While not yet connected there is nothing to move: the first connection reads
   * the credentials anyway. A provider's `watch` calls this on each change.
   */
  rotateCredentials(): Promise<void> {
    if (this.#credentials === undefined) {
      return Promise.reject(
        new IllegalStateError(
          'rotateCredentials: expected a transport made with `credentials`, found none',
        ),
      );
    }
    try {
      this.#requireUsable('rotateCredentials');
    } catch (error) {
      return Promise.reject(error);
    }
    this.#rotationAfter = this.#dialer.reads;
    return this.#rotation.request();
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
    const as =
      this.#credentials === undefined ? {} : { username: this.#dialer.usernameOf(connection) };
    this.#logger.info({ ...this.#fields, ...as }, 'broker connected');
    this.#stopWatching ??= this.#credentials?.watch?.(() => {
      // Its outcome is logged and reported as an event; nobody waits for this promise.
      this.rotateCredentials().catch(() => {});
    });
  }

  /** A new connection, dialled with the credentials read now (or the URL's), and watched. */
  async #dial(timeoutMs: number, rotating = false): Promise<ChannelModel> {
    // A rotation must log in with the new credentials or fail; a (re)connect may fall back.
    const connection = await this.#dialer.dial(timeoutMs, { fallBack: !rotating });
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
    this.#publisher.detach(connection);
    for (const consumer of this.#consumers) consumer.suspend(connection);
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

  /**
   * Declares every topology again, reopens the publish channel and resumes each consumer (or
   * moves one still consuming on a connection a rotation replaced).
   */
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
      await this.#follow(consumer, connection, `after reconnecting to ${this.#broker}`);
    }
    if (this.#connection !== connection) {
      throw this.#lostBecause ?? new Error('the connection was lost while it was restored');
    }
  }

  /**
   * Has `consumer` consume on `connection`: resumes it, or moves it off the connection it is on.
   * A failure while `connection` is still the one in use ends that subscription, through its
   * `onCancel`; one because `connection` was lost meanwhile is thrown, for the recovery to
   * handle.
   */
  async #follow(
    consumer: ChannelConsumer,
    connection: ChannelModel,
    context = 'after rotating credentials',
  ): Promise<void> {
    const suspended = consumer.suspended;
    try {
      await consumer.moveTo(connection);
    } catch (error) {
      if (this.#connection !== connection) throw error;
      const reason = `${context}, ${describeCause(error)}`;
      if (suspended) consumer.fail(reason);
      else await consumer.stop(reason);
    }
  }

  /** One rotation attempt (see {@link rotateCredentials}): the user name in use after it. */
  async #rotateOnce(): Promise<string | undefined> {
    await this.#connecting?.catch(() => {});
    while (this.#state === 'recovering') await this.#whenRecovered('rotateCredentials');
    this.#requireUsable('rotateCredentials');
    const old = this.#connection;
    if (this.#state !== 'connected' || old === undefined) return undefined;
    // A reconnect since the request read the credentials afresh: there is nothing to move.
    if (this.#dialer.readOf(old) > this.#rotationAfter) return this.#dialer.usernameOf(old);

    this.#logger.debug(this.#fields, 'rotating broker credentials');
    const next = await this.#prepare();
    if (this.#state !== 'connected' || this.#connection !== old) {
      // Closed, or lost: the recovery dials with the newest credentials, and says so.
      await closeQuietly(next);
      return this.#rotateOnce();
    }

    // The switch: from here a loss of `next` is a loss of the connection in use.
    this.#connection = next;
    this.#retired.retire(old, this.#dialer.usernameOf(old));
    try {
      await this.#publisher.attach(next);
    } catch (error) {
      if (this.#connection === next) {
        this.#onLost(next, asError(error));
        void closeQuietly(next);
      }
      return this.#rotateOnce();
    }
    for (const consumer of [...this.#consumers]) {
      if (this.#connection !== next) return this.#rotateOnce();
      try {
        await this.#follow(consumer, next);
      } catch {
        // `next` was lost: the recovery moves the consumers left.
        return this.#rotateOnce();
      }
    }
    return this.#dialer.usernameOf(next);
  }

  /**
   * Dials a connection with the credentials read now and declares every known topology on it,
   * which also shows that the new user may use them. Rejects with a {@link RotationFailure}.
   */
  async #prepare(): Promise<ChannelModel> {
    let next: ChannelModel | undefined;
    try {
      next = await this.#dial(this.#connectTimeoutMs, true);
      this.#rotating = next;
      for (const topology of this.#topologies.values()) await declareTopology(next, topology);
      return next;
    } catch (error) {
      if (next !== undefined) await closeQuietly(next);
      throw new RotationFailure(error, this.#dialer.lastUsername);
    } finally {
      this.#rotating = undefined;
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
    this.#rotation.stop();
    this.#stopWatching?.();
    await this.#connecting?.catch(() => {});
    for (const consumer of this.#consumers) await consumer.close();
    this.#consumers.clear();
    await this.#publisher.close();
    if (this.#connection !== undefined) await closeQuietly(this.#connection);
    await this.#retired.closeAll();
    if (this.#rotating !== undefined) await closeQuietly(this.#rotating);
    await this.#recovery?.ended;
    this.#logger.info(this.#fields, 'transport closed');
  }

  #settle(delivery: Delivery, outcome: Outcome): void {
    const receipt = AmqpDelivery.receiptOf(delivery);
    if (receipt === undefined || receipt.consumer.owner !== this) {
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
    return this.#dialer.unreachable(cause);
  }
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(describeCause(value));
}
