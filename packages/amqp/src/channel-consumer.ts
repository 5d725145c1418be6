import type { CancelListener, Delivery, LogSink } from '@warren/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { describeCause } from './cause.ts';
import { fromAmqpProperties } from './properties.ts';

/** How a delivery is settled. */
export type Outcome = { kind: 'ack' } | { kind: 'nack'; requeue: boolean };

/** What the transport remembers about a delivery until it is settled. */
export interface Receipt {
  readonly consumer: ChannelConsumer;
  readonly message: ConsumeMessage;
  settled: boolean;
}

export interface ChannelConsumerOptions {
  connection: ChannelModel;
  queue: string;
  prefetch: number;
  onDelivery: (delivery: Delivery) => void;
  onCancel: CancelListener | undefined;
  /** Where each delivery's receipt goes, so the transport can settle it on this channel. */
  receipts: WeakMap<Delivery, Receipt>;
  logger: LogSink;
  fields: object;
  /** Why the connection went away, if it has. */
  connectionCause: () => Error | undefined;
  /** Called once the channel has closed, for whatever reason. */
  onClosed: (consumer: ChannelConsumer) => void;
}

/**
 * - `consuming`: deliveries arrive.
 * - `cancelling`: we asked the broker to stop them.
 * - `cancelled`: none arrive any more (our cancel or the broker's); the channel stays open until
 *   every delivery is settled, because a delivery can only be settled on its own channel.
 * - `closed`: the channel is gone; the broker requeues what was not settled.
 */
type ConsumerState = 'consuming' | 'cancelling' | 'cancelled' | 'closed';

/** One consumer on a channel of its own, with its own prefetch. */
export class ChannelConsumer {
  readonly #options: ChannelConsumerOptions;
  readonly #channel: Channel;
  readonly #fields: object;
  #state: ConsumerState = 'consuming';
  #consumerTag = '';
  #unsettled = 0;
  #closedBy: Error | undefined;
  #closing = false;
  #cancelNotified = false;
  #cancelling: Promise<void> | undefined;
  #resubscribing: Promise<void> | undefined;

  private constructor(options: ChannelConsumerOptions, channel: Channel) {
    this.#options = options;
    this.#channel = channel;
    this.#fields = { ...options.fields, queue: options.queue };
  }

  /** Opens a channel, sets its prefetch and starts consuming with manual acknowledgement. */
  static async start(options: ChannelConsumerOptions): Promise<ChannelConsumer> {
    const channel = await options.connection.createChannel();
    const consumer = new ChannelConsumer(options, channel);
    channel.on('error', (error: Error) => consumer.#onChannelError(error));
    channel.on('close', () => consumer.#onChannelClose());

    try {
      await channel.prefetch(options.prefetch);
      const reply = await channel.consume(
        options.queue,
        (message) => consumer.#onMessage(message),
        { noAck: false },
      );
      consumer.#consumerTag = reply.consumerTag;
    } catch (cause) {
      consumer.#closing = true;
      await channel.close().catch(() => {});
      const reason = describeCause(consumer.#closedBy ?? cause);
      throw new Error(`consuming from queue "${options.queue}" failed: ${reason}`, { cause });
    }
    options.logger.debug({ ...consumer.#fields, prefetch: options.prefetch }, 'consumer started');
    return consumer;
  }

  /** Stops new deliveries; resolves once the broker has confirmed, or at once if it cannot. */
  cancel(): Promise<void> {
    this.#cancelling ??= this.#cancel();
    return this.#cancelling;
  }

  /** Changes the consumer's prefetch; a no-op once the channel is gone. */
  setPrefetch(count: number): Promise<void> {
    const previous = this.#resubscribing ?? Promise.resolve();
    this.#resubscribing = previous.catch(() => {}).then(() => this.#resubscribe(count));
    return this.#resubscribing;
  }

  /**
   * RabbitMQ applies a per-consumer prefetch only to consumers started after it, so a new limit
   * takes a new consumer: start it, then cancel the old one. Deliveries not yet settled stay
   * valid, since both consumers share the channel.
   */
  async #resubscribe(count: number): Promise<void> {
    if (this.#state === 'closed' || this.#closing) return;
    await this.#channel.prefetch(count);
    if (this.#state !== 'consuming') return;

    const reply = await this.#channel.consume(
      this.#options.queue,
      (message) => this.#onMessage(message),
      { noAck: false },
    );
    const previous = this.#consumerTag;
    this.#consumerTag = reply.consumerTag;
    await this.#channel.cancel(previous);
    this.#options.logger.debug({ ...this.#fields, prefetch: count }, 'prefetch changed');
  }

  /** Closes the channel; the broker requeues every unsettled delivery. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#closing) return;
    this.#closing = true;
    await this.#channel.close().catch(() => {});
  }

  /** Settles one of this channel's deliveries, or drops the settle if the channel is gone. */
  settle(receipt: Receipt, outcome: Outcome): void {
    const fields = { ...this.#fields, deliveryTag: receipt.message.fields.deliveryTag };
    if (receipt.settled) {
      this.#options.logger.debug(fields, 'settle ignored: delivery already settled');
      return;
    }
    receipt.settled = true;
    this.#unsettled -= 1;

    if (this.#state === 'closed' || this.#closing) {
      this.#options.logger.debug(fields, 'settle dropped: channel closed, the broker redelivers');
      return;
    }
    try {
      if (outcome.kind === 'ack') this.#channel.ack(receipt.message);
      else this.#channel.nack(receipt.message, false, outcome.requeue);
    } catch (error) {
      const detail = { ...fields, error: describeCause(error) };
      this.#options.logger.debug(detail, 'settle dropped: channel closed, the broker redelivers');
    }
    this.#closeWhenIdle();
  }

  async #cancel(): Promise<void> {
    // A prefetch change in flight is replacing the consumer tag: cancel the one it leaves.
    await this.#resubscribing?.catch(() => {});
    if (this.#state !== 'consuming') return;
    this.#state = 'cancelling';
    try {
      await this.#channel.cancel(this.#consumerTag);
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

  #onMessage(message: ConsumeMessage | null): void {
    if (message === null) {
      this.#onBrokerCancel();
      return;
    }
    const delivery = this.#toDelivery(message);
    this.#options.receipts.set(delivery, { consumer: this, message, settled: false });
    this.#unsettled += 1;
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

  #toDelivery(message: ConsumeMessage): Delivery {
    const { properties, dropped } = fromAmqpProperties(message.properties);
    const { fields } = message;
    if (dropped.length > 0) {
      const detail = { ...this.#fields, deliveryTag: fields.deliveryTag, headers: dropped };
      this.#options.logger.debug(detail, 'headers without a Warren form left out');
    }
    return {
      body: message.content,
      properties,
      exchange: fields.exchange,
      routingKey: fields.routingKey,
      redelivered: fields.redelivered,
      deliveryTag: fields.deliveryTag,
      queue: this.#options.queue,
    };
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

  #onChannelError(error: Error): void {
    this.#closedBy = error;
    const detail = { ...this.#fields, error: describeCause(error) };
    this.#options.logger.warn(detail, 'consumer channel closed by the broker');
  }

  #onChannelClose(): void {
    const wasConsuming = this.#state === 'consuming' && !this.#closing;
    this.#state = 'closed';
    this.#options.onClosed(this);
    if (!wasConsuming) return;
    // The connection reports its cause after closing its channels, so look once it has.
    queueMicrotask(() => {
      const cause = this.#closedBy ?? this.#options.connectionCause();
      const why = cause === undefined ? '' : `: ${describeCause(cause)}`;
      this.#notifyCancel(`the channel consuming queue "${this.#options.queue}" closed${why}`);
    });
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

  #closeWhenIdle(): void {
    if (this.#state !== 'cancelled' || this.#unsettled > 0) return;
    void this.close();
  }
}
