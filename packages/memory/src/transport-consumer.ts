import type { CancelListener, Delivery } from '@warren/core';
import { describeThrown, type LogSink } from '@warren/core';
import type { BrokerConnection } from './broker-connection.ts';
import type { DeathRecord } from './dead-letter.ts';
import type { BrokerConsumer, BrokerDelivery } from './queue-consumer.ts';

/** How a delivery is settled. */
export type Outcome = { kind: 'ack' } | { kind: 'nack'; requeue: boolean };

/** What the transport remembers about a delivery until it is settled. */
export interface Receipt {
  readonly consumer: TransportConsumer;
  readonly deliveryTag: number;
  readonly deaths: readonly DeathRecord[];
  settled: boolean;
}

export interface TransportConsumerOptions {
  connection: BrokerConnection;
  queue: string;
  prefetch: number;
  onDelivery: (delivery: Delivery) => void;
  onCancel: CancelListener | undefined;
  /** Where each delivery's receipt goes, so the transport can settle it through this consumer. */
  receipts: WeakMap<Delivery, Receipt>;
  logger: LogSink;
  fields: object;
  /** Called once the consumer's channel has closed. */
  onClosed: (consumer: TransportConsumer) => void;
}

/**
 * - `consuming`: deliveries arrive.
 * - `cancelled`: none arrive any more (our cancel or the broker's); the channel stays open until
 *   every delivery is settled, because a delivery can only be settled on its own channel.
 * - `closed`: the channel is gone; the broker took back what was not settled.
 */
type ConsumerState = 'consuming' | 'cancelled' | 'closed';

/**
 * One consumer of the transport, on a broker channel of its own: the embedded counterpart of
 * `@warren/amqp`'s channel consumer, with the same rules for settling, cancelling and closing.
 */
export class TransportConsumer {
  readonly #options: TransportConsumerOptions;
  readonly #fields: object;
  readonly #consumer: BrokerConsumer;
  #state: ConsumerState = 'consuming';
  #unsettled = 0;
  #cancelNotified = false;

  constructor(options: TransportConsumerOptions) {
    this.#options = options;
    this.#fields = { ...options.fields, queue: options.queue };
    try {
      this.#consumer = options.connection.consume(options.queue, {
        prefetch: options.prefetch,
        onDelivery: (delivery) => this.#onDelivery(delivery),
        onCancel: () => this.#onBrokerCancel(),
      });
    } catch (cause) {
      throw new Error(`consuming from queue "${options.queue}" failed: ${describeThrown(cause)}`, {
        cause,
      });
    }
    options.logger.debug({ ...this.#fields, prefetch: options.prefetch }, 'consumer started');
  }

  /** Stops new deliveries; outstanding ones can still be settled. */
  cancel(): void {
    if (this.#state !== 'consuming') return;
    this.#state = 'cancelled';
    this.#consumer.cancel();
    this.#options.logger.debug(this.#fields, 'consumer cancelled');
    this.#closeWhenIdle();
  }

  /** Changes the prefetch at once; a no-op once the channel is gone. */
  setPrefetch(count: number): void {
    if (this.#state === 'closed') return;
    this.#consumer.setPrefetch(count);
    this.#options.logger.debug({ ...this.#fields, prefetch: count }, 'prefetch changed');
  }

  /** Closes the channel; the broker requeues every unsettled delivery. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#consumer.close();
    this.#options.onClosed(this);
  }

  /** Settles one of this consumer's deliveries, or drops the settle if the channel is gone. */
  settle(receipt: Receipt, outcome: Outcome): void {
    const fields = { ...this.#fields, deliveryTag: receipt.deliveryTag };
    if (receipt.settled) {
      this.#options.logger.debug(fields, 'settle ignored: delivery already settled');
      return;
    }
    receipt.settled = true;
    this.#unsettled -= 1;

    if (this.#state === 'closed') {
      this.#options.logger.debug(fields, 'settle dropped: channel closed, the broker redelivers');
      return;
    }
    if (outcome.kind === 'ack') this.#consumer.ack(receipt.deliveryTag);
    else this.#consumer.nack(receipt.deliveryTag, { requeue: outcome.requeue });
    this.#closeWhenIdle();
  }

  #onDelivery(message: BrokerDelivery): void {
    const delivery = toDelivery(message);
    this.#options.receipts.set(delivery, {
      consumer: this,
      deliveryTag: message.deliveryTag,
      deaths: message.deaths,
      settled: false,
    });
    this.#unsettled += 1;
    try {
      this.#options.onDelivery(delivery);
    } catch (error) {
      const fields = { ...this.#fields, deliveryTag: delivery.deliveryTag };
      this.#options.logger.error(
        { ...fields, error: describeThrown(error) },
        'delivery listener threw',
      );
    }
  }

  #onBrokerCancel(): void {
    if (this.#state === 'closed') return;
    this.#state = 'cancelled';
    this.#options.logger.warn(this.#fields, 'consumer cancelled by the broker');
    this.#notifyCancel(
      `the broker cancelled the consumer of queue "${this.#options.queue}" (queue deleted)`,
    );
    this.#closeWhenIdle();
  }

  #notifyCancel(reason: string): void {
    if (this.#cancelNotified) return;
    this.#cancelNotified = true;
    try {
      this.#options.onCancel?.(reason);
    } catch (error) {
      const detail = { ...this.#fields, error: describeThrown(error) };
      this.#options.logger.error(detail, 'cancel listener threw');
    }
  }

  #closeWhenIdle(): void {
    if (this.#state !== 'cancelled' || this.#unsettled > 0) return;
    this.close();
  }
}

/** Warren's view of a delivery, shaped as `@warren/amqp` shapes one: headers always present. */
function toDelivery(message: BrokerDelivery): Delivery {
  return {
    body: message.body,
    properties: { ...message.properties, headers: message.properties.headers ?? {} },
    exchange: message.exchange,
    routingKey: message.routingKey,
    redelivered: message.redelivered,
    deliveryTag: message.deliveryTag,
    queue: message.queue,
  };
}
