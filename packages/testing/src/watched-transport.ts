import type {
  ConsumeOptions,
  Delivery,
  MessageProperties,
  PublishOptions,
  PublishTarget,
  Subscription,
  Transport,
} from '@warren/core';

/** Told of every message a transport published, once the broker has taken it. */
export type PublishListener = (target: PublishTarget, properties: MessageProperties) => void;

/**
 * A {@link Transport} that passes every call on, and tells a listener what was published: how
 * the harness sees a job go to a delay queue, which no one may consume.
 */
export class WatchedTransport implements Transport {
  readonly #inner: Transport;
  readonly #onPublish: PublishListener;

  constructor(inner: Transport, onPublish: PublishListener) {
    this.#inner = inner;
    this.#onPublish = onPublish;
  }

  connect(): Promise<void> {
    return this.#inner.connect();
  }

  declare(...args: Parameters<Transport['declare']>): Promise<void> {
    return this.#inner.declare(...args);
  }

  declareReplyQueue(): Promise<string> {
    return this.#inner.declareReplyQueue();
  }

  consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Subscription> {
    return this.#inner.consume(queue, options, onDelivery);
  }

  async publish(
    target: PublishTarget,
    body: Buffer,
    properties: MessageProperties,
    options?: PublishOptions,
  ): Promise<void> {
    await this.#inner.publish(target, body, properties, options);
    this.#onPublish(target, properties);
  }

  ack(delivery: Delivery): void {
    this.#inner.ack(delivery);
  }

  nack(delivery: Delivery, options: { requeue: boolean }): void {
    this.#inner.nack(delivery, options);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
