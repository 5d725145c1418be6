import type { CancelListener, Delivery, LogSink } from '@warren/core';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { describeCause } from './cause.ts';
import { closeQuietly } from './closing.ts';
import { ConsumerChannel, type Receipt } from './consumer-channel.ts';
import { AmqpDelivery } from './delivery.ts';
import { OffWaiters } from './off-waiters.ts';
import { fromAmqpProperties } from './properties.ts';
import { RetiredChannels } from './retired-channels.ts';

/** How a delivery is settled. */
export type Outcome = { kind: 'ack' } | { kind: 'nack'; requeue: boolean };

export interface ChannelConsumerOptions {
  queue: string;
  prefetch: number;
  onDelivery: (delivery: Delivery) => void;
  onCancel: CancelListener | undefined;
  /** The transport the consumer belongs to: it settles only its own consumers' deliveries. */
  owner: object;
  logger: LogSink;
  fields: object;
  /** Called once the consumer is over, for whatever reason. */
  onClosed: (consumer: ChannelConsumer) => void;
}

/**
 * - `consuming`: deliveries arrive.
 * - `suspended`: the connection was lost; the transport calls {@link ChannelConsumer.resume}
 *   with a new one, or {@link ChannelConsumer.fail} when it gives up.
 * - `cancelling`: we asked the broker to stop deliveries.
 * - `cancelled`: none arrive any more (our cancel or the broker's); the channel stays open until
 *   every delivery is settled, because a delivery can only be settled on its own channel.
 * - `closed`: over; the broker requeues what was not settled.
 */
type ConsumerState = 'consuming' | 'suspended' | 'cancelling' | 'cancelled' | 'closed';

/**
 * One subscription: a consumer on a channel of its own with its own prefetch. It outlives its
 * channel: after a reconnect it consumes again on a new one with its current prefetch, and
 * after a credentials rotation it moves to a channel of the new connection (see
 * {@link ChannelConsumer.moveTo}).
 */
export class ChannelConsumer {
  readonly #options: ChannelConsumerOptions;
  readonly #fields: object;
  #state: ConsumerState = 'consuming';
  #line: ConsumerChannel | undefined;
  /** The connection {@link #line} is a channel of. */
  #connection: ChannelModel | undefined;
  /** Channels of connections it moved off, each open until what it delivered is settled. */
  readonly #retired: RetiredChannels;
  /** Who waits for this consumer to stop using a connection (see {@link whenOff}). */
  readonly #off = new OffWaiters((connection) => this.isOn(connection));
  #prefetch: number;
  #closing = false;
  #cancelNotified = false;
  #cancelling: Promise<void> | undefined;
  #resubscribing: Promise<void> | undefined;

  /** The transport this consumer belongs to (see {@link ChannelConsumerOptions.owner}). */
  get owner(): object {
    return this.#options.owner;
  }

  private constructor(options: ChannelConsumerOptions) {
    this.#options = options;
    this.#prefetch = options.prefetch;
    this.#fields = { ...options.fields, queue: options.queue };
    this.#retired = new RetiredChannels(options.logger, this.#fields, () => this.#off.check());
  }

  /** Opens a channel, sets its prefetch and starts consuming with manual acknowledgement. */
  static async start(
    options: ChannelConsumerOptions,
    connection: ChannelModel,
  ): Promise<ChannelConsumer> {
    const consumer = new ChannelConsumer(options);
    await consumer.#attach(connection);
    options.logger.debug({ ...consumer.#fields, prefetch: options.prefetch }, 'consumer started');
    return consumer;
  }

  /** Stops new deliveries; resolves once the broker has confirmed, or at once if it cannot. */
  cancel(): Promise<void> {
    this.#cancelling ??= this.#cancel();
    return this.#cancelling;
  }

  /**
   * Changes the consumer's prefetch. The new value holds from now on, after a reconnect too;
   * while the connection is down it is only remembered.
   */
  setPrefetch(count: number): Promise<void> {
    this.#prefetch = count;
    const previous = this.#resubscribing ?? Promise.resolve();
    this.#resubscribing = previous.catch(() => {}).then(() => this.#resubscribe(count));
    return this.#resubscribing;
  }

  /** Closes its channels; the broker requeues every unsettled delivery. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#closing) return;
    this.#closing = true;
    await this.#retired.closeAll();
    const line = this.#line;
    if (line === undefined || !line.open) {
      this.#end();
      return;
    }
    // Acks still waiting for the end of the turn go first, or the close would requeue them.
    line.flush();
    await closeQuietly(line.channel);
  }

  /**
   * `connection` is gone, and with it the channels on it. A live consumer whose channel it was
   * waits for {@link resume}; one that was cancelling has nothing left to do, since the broker
   * requeued what it had not settled.
   */
  suspend(connection: ChannelModel): void {
    this.#retired.lose(connection);
    if (this.#connection !== connection) return;
    const line = this.#line;
    if (line !== undefined) line.open = false;
    if (this.#closing) {
      this.#end();
    } else if (this.#state === 'consuming') {
      this.#state = 'suspended';
      this.#options.logger.debug(this.#fields, 'consumer suspended until the connection is back');
    } else if (this.#state === 'cancelling' || this.#state === 'cancelled') {
      this.#end();
    }
    this.#off.check();
  }

  /**
   * Consumes on `connection` from now on. A suspended consumer consumes again there, as after a
   * reconnect. A live one on another connection starts a consumer there first, then cancels the
   * old one; the old channel stays open until every delivery it handed out is settled, since a
   * delivery can only be settled on its own channel, and then closes. Rejects when the new
   * consumer cannot start; it then goes on where it was, unless the connection was lost meanwhile.
   */
  moveTo(connection: ChannelModel): Promise<void> {
    if (this.#state === 'suspended') return this.resume(connection);
    const previous = this.#resubscribing ?? Promise.resolve();
    const moving = previous.catch(() => {}).then(() => this.#move(connection));
    this.#resubscribing = moving;
    return moving;
  }

  /** Whether it waits for {@link resume}, its connection lost. */
  get suspended(): boolean {
    return this.#state === 'suspended';
  }

  /** Whether a channel of this consumer is open on `connection`. */
  isOn(connection: ChannelModel): boolean {
    const line = this.#line;
    if (this.#state !== 'closed' && this.#connection === connection && line?.open) return true;
    return this.#retired.isOn(connection);
  }

  /** Resolves once no channel of this consumer is open on `connection`. */
  whenOff(connection: ChannelModel): Promise<void> {
    return this.#off.wait(connection);
  }

  /**
   * Consumes again on `connection` with the current prefetch. Rejects when that fails; the
   * transport then decides whether the connection or the subscription is at fault.
   */
  async resume(connection: ChannelModel): Promise<void> {
    if (this.#state !== 'suspended') return;
    const line = await this.#attach(connection);
    if (this.#state !== 'suspended') {
      // Cancelled while it resumed: closing the channel requeues anything it received.
      line.open = false;
      await closeQuietly(line.channel);
      return;
    }
    this.#state = 'consuming';
    this.#options.logger.info({ ...this.#fields, prefetch: this.#prefetch }, 'consumer resumed');
    // A prefetch change that came while the channel opened found no consumer to change.
    if (line.prefetch !== this.#prefetch) await this.setPrefetch(this.#prefetch);
  }

  /**
   * Ends the subscription without dropping what it delivered: cancels the consumer, lets every
   * delivery be settled on its channel, then closes it; its holder hears why through `onCancel`.
   */
  async stop(reason: string): Promise<void> {
    if (this.#state !== 'consuming') return;
    this.#options.logger.warn({ ...this.#fields, reason }, 'consumer stopped');
    await this.cancel();
    this.#notifyCancel(reason);
  }

  /** The subscription cannot go on (the transport gave up): tell its holder why. */
  fail(reason: string): void {
    if (this.#state === 'closed') return;
    void this.#retired.closeAll();
    const line = this.#line;
    if (line?.open) {
      line.flush();
      line.open = false;
      void closeQuietly(line.channel);
    }
    this.#end();
    this.#notifyCancel(reason);
  }

  /**
   * Settles one of this consumer's deliveries on its channel, or drops the settle if that
   * channel is gone. An ack goes to the broker at the end of the turn, with the channel's other
   * acks (see {@link ConsumerChannel}); a nack goes at once.
   */
  settle(receipt: Receipt, outcome: Outcome): void {
    const { line } = receipt;
    if (receipt.settled) {
      this.#options.logger.debug(this.#tagged(receipt), 'settle ignored: delivery already settled');
      return;
    }
    receipt.settled = true;
    if (!line.open) {
      // The channel died, maybe with its connection: the broker has requeued the delivery, and
      // its tag would name another delivery (or none) on any other channel.
      const fields = this.#tagged(receipt);
      this.#options.logger.debug(fields, 'settle dropped: channel closed, the broker redelivers');
      return;
    }

    if (outcome.kind === 'ack') line.ack(receipt);
    else line.nack(receipt, outcome.requeue);
    // A settle on a channel it moved off may be the last that channel waited for.
    if (line !== this.#line) this.#retired.closeWhenIdle(line);
    this.#closeWhenIdle();
  }

  async #move(connection: ChannelModel): Promise<void> {
    const old = this.#line;
    const from = this.#connection;
    if (old === undefined || from === undefined || from === connection) return;
    if (this.#state !== 'consuming' || this.#closing || !old.open) return;

    // Deliveries on the old channel keep being taken until the broker confirms its cancel.
    this.#retired.add(old, from);
    try {
      await this.#attach(connection);
    } catch (error) {
      const live = this.#state === 'consuming' && !this.#closing;
      if (live && old.open) {
        // Still consuming where it was: it stays there, and the transport decides.
        const failed = this.#line;
        if (failed !== old && failed !== undefined) failed.open = false;
        this.#line = old;
        this.#retired.delete(old);
        this.#connection = from;
      } else if (live) {
        // Its old channel closed meanwhile too: nothing is left to consume on.
        this.fail(
          `consuming from queue "${this.#options.queue}" failed as it moved: ${describeCause(error)}`,
        );
      } else {
        // Lost (suspended, to resume elsewhere) or closed while it moved: the old consumer stops.
        await this.#retired.cancel(old);
        if (this.#closing) this.#end();
      }
      throw error;
    }
    if (this.#isOver()) {
      await this.#retired.close(old);
      return;
    }
    await this.#retired.cancel(old);
    this.#off.check();
    this.#options.logger.debug(this.#fields, 'consumer moved to the new connection');
  }

  async #attach(connection: ChannelModel): Promise<ConsumerChannel> {
    const channel = await connection.createChannel();
    const line = new ConsumerChannel(channel, this.#prefetch, (count, error) => {
      const detail = { ...this.#fields, settles: count, error: describeCause(error) };
      this.#options.logger.debug(detail, 'settle dropped: channel closed, the broker redelivers');
    });
    channel.on('error', (error: Error) => this.#onChannelError(line, error));
    channel.on('close', () => this.#onChannelClose(line));
    this.#line = line;
    this.#connection = connection;

    try {
      await channel.prefetch(this.#prefetch);
      const reply = await channel.consume(
        this.#options.queue,
        (message) => this.#onMessage(line, message),
        { noAck: false },
      );
      line.consumerTag = reply.consumerTag;
      line.starting = false;
      return line;
    } catch (cause) {
      line.open = false;
      await closeQuietly(channel);
      const reason = describeCause(line.closedBy ?? cause);
      throw new Error(`consuming from queue "${this.#options.queue}" failed: ${reason}`, {
        cause,
      });
    }
  }

  /**
   * RabbitMQ applies a per-consumer prefetch only to consumers started after it, so a new limit
   * takes a new consumer: start it, then cancel the old one. Deliveries not yet settled stay
   * valid, since both consumers share the channel.
   */
  async #resubscribe(count: number): Promise<void> {
    const line = this.#line;
    if (line === undefined || !line.open || this.#closing) return;
    if (this.#state !== 'consuming' && this.#state !== 'cancelled') return;
    try {
      await line.channel.prefetch(count);
      if (this.#state !== 'consuming') return;
      const reply = await line.channel.consume(
        this.#options.queue,
        (message) => this.#onMessage(line, message),
        { noAck: false },
      );
      const previous = line.consumerTag;
      line.consumerTag = reply.consumerTag;
      line.prefetch = count;
      await line.channel.cancel(previous);
    } catch (error) {
      // The channel went with its connection: the next one starts with this prefetch.
      if (!line.open) return;
      throw error;
    }
    this.#options.logger.debug({ ...this.#fields, prefetch: count }, 'prefetch changed');
  }

  async #cancel(): Promise<void> {
    // A prefetch change in flight is replacing the consumer tag: cancel the one it leaves.
    await this.#resubscribing?.catch(() => {});
    if (this.#state === 'suspended') {
      // No channel to stop; what it had unsettled was requeued when the connection went.
      this.#options.logger.debug(this.#fields, 'consumer cancelled');
      this.#end();
      return;
    }
    const line = this.#line;
    if (this.#state !== 'consuming' || line === undefined) return;
    this.#state = 'cancelling';
    try {
      await line.channel.cancel(line.consumerTag);
    } catch (error) {
      // The channel closed first: no more deliveries either way.
      this.#options.logger.debug(
        { ...this.#fields, error: describeCause(error) },
        'cancel skipped',
      );
    }
    if (this.#state === 'cancelling') this.#state = 'cancelled';
    this.#options.logger.debug(this.#fields, 'consumer cancelled');
    this.#closeWhenIdle();
  }

  #onMessage(line: ConsumerChannel, message: ConsumeMessage | null): void {
    const retired = line !== this.#line && this.#retired.has(line);
    // A channel being given up: closing it returns the message to the queue.
    if ((line !== this.#line && !retired) || !line.open) return;
    // Cancelled while a reconnect re-consumed: that channel is being closed, which returns it.
    if (this.#state === 'closed') return;
    if (message === null) {
      // On a retired channel, its consumer is over; the current one hears of it on its own.
      if (retired) void this.#retired.cancel(line);
      else this.#onBrokerCancel();
      return;
    }
    const receipt: Receipt = { consumer: this, line, message, settled: false, ackDue: false };
    const delivery = this.#toDelivery(message, receipt);
    line.track(receipt);
    try {
      this.#options.onDelivery(delivery);
    } catch (error) {
      // A throw here would reach amqplib's frame loop and take the connection down.
      const fields = { ...this.#fields, deliveryTag: delivery.deliveryTag };
      this.#options.logger.error(
        { ...fields, error: describeCause(error) },
        'delivery listener threw',
      );
    }
  }

  #toDelivery(message: ConsumeMessage, receipt: Receipt): Delivery {
    const { properties, dropped } = fromAmqpProperties(message.properties);
    const { fields } = message;
    if (dropped.length > 0) {
      const detail = { ...this.#fields, deliveryTag: fields.deliveryTag, headers: dropped };
      this.#options.logger.debug(detail, 'headers without a Warren form left out');
    }
    return new AmqpDelivery(message, properties, this.#options.queue, receipt);
  }

  #onBrokerCancel(): void {
    this.#state = 'cancelled';
    this.#options.logger.warn(this.#fields, 'consumer cancelled by the broker');
    this.#notifyCancel(
      `the broker cancelled the consumer of queue "${this.#options.queue}" ` +
        '(queue deleted, or its node lost)',
    );
    this.#closeWhenIdle();
  }

  #onChannelError(line: ConsumerChannel, error: Error): void {
    line.closedBy = error;
    const detail = { ...this.#fields, error: describeCause(error) };
    this.#options.logger.warn(detail, 'consumer channel closed by the broker');
  }

  #onChannelClose(line: ConsumerChannel): void {
    line.open = false;
    if (this.#retired.delete(line)) return;
    if (line !== this.#line || line.starting || this.#state === 'closed') return;
    if (this.#closing || this.#state === 'cancelling' || this.#state === 'cancelled') {
      this.#end();
      return;
    }
    if (this.#state !== 'consuming') return;
    // A lost connection closes its channels first and reports itself after, in the same tick,
    // and the transport then suspends this consumer. Still consuming after that means the
    // broker closed this channel alone.
    queueMicrotask(() => {
      if (this.#state !== 'consuming' || this.#line !== line) return;
      this.#end();
      const why = line.closedBy === undefined ? '' : `: ${describeCause(line.closedBy)}`;
      this.#notifyCancel(`the channel consuming queue "${this.#options.queue}" closed${why}`);
    });
  }

  /** Closed or closing; a method, so that a check after an await is not narrowed away. */
  #isOver(): boolean {
    return this.#state === 'closed' || this.#closing;
  }

  #end(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#options.onClosed(this);
    this.#off.check();
  }

  #notifyCancel(reason: string): void {
    if (this.#cancelNotified) return;
    this.#cancelNotified = true;
    try {
      this.#options.onCancel?.(reason);
    } catch (error) {
      const detail = { ...this.#fields, error: describeCause(error) };
      this.#options.logger.error(detail, 'cancel listener threw');
    }
  }

  #tagged(receipt: Receipt): object {
    return { ...this.#fields, deliveryTag: receipt.message.fields.deliveryTag };
  }

  #closeWhenIdle(): void {
    const line = this.#line;
    if (this.#state !== 'cancelled' || line === undefined || line.unsettled > 0) return;
    if (!this.#retired.idle()) return;
    void this.close();
  }
}
