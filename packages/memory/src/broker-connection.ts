import type { MessageProperties, PublishTarget } from '@warren/core';
import type { ExchangeType } from './exchange.ts';
import type { QueueDeclaration } from './queue-arguments.ts';
import {
  type BrokerConsumer,
  type BrokerDelivery,
  type ConsumerListeners,
  QueueConsumer,
} from './queue-consumer.ts';
import type { DeclaredQueue, Vhost } from './vhost.ts';

/** How to consume: the prefetch and the listeners. */
export interface BrokerConsumeOptions {
  /** Unacknowledged deliveries the consumer may hold (1 or more). */
  prefetch: number;
  onDelivery: (delivery: BrokerDelivery) => void;
  /** Called on a later turn when the queue is deleted under the consumer. */
  onCancel?: (reason: string) => void;
}

/**
 * A client's session with the embedded broker, as an AMQP connection is: what it declares
 * exclusive lives as long as it does, and closing it returns its consumers' unacknowledged
 * deliveries to their queues. Operations the broker refuses throw a `BrokerRefusalError`, and
 * the connection stays usable (unlike an AMQP channel, which the broker would close).
 * Made by `MemoryBroker.connect`.
 */
export class BrokerConnection {
  readonly #vhost: Vhost;
  readonly #consumers = new Set<QueueConsumer>();
  #open = true;

  constructor(
    vhost: Vhost,
    /** Shown nowhere yet; kept for parity with an AMQP connection's name. */
    readonly name: string | undefined,
  ) {
    this.#vhost = vhost;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  declareExchange(name: string, type: ExchangeType): void {
    this.#requireOpen('declareExchange');
    this.#vhost.declareExchange(name, type);
  }

  /** Declares a queue (durable unless said otherwise); `''` asks for a server-made name. */
  declareQueue(name: string, declaration: QueueDeclaration = {}): DeclaredQueue {
    this.#requireOpen('declareQueue');
    return this.#vhost.declareQueue(name, declaration, this);
  }

  bindQueue(queue: string, exchange: string, key: string): void {
    this.#requireOpen('bindQueue');
    this.#vhost.bindQueue(queue, exchange, key, this);
  }

  /** Routes the message now: when this returns, it is in every queue it routes to. */
  publish(target: PublishTarget, body: Buffer, properties: MessageProperties): number {
    this.#requireOpen('publish');
    return this.#vhost.publish(target.exchange, target.routingKey, body, properties);
  }

  /** Starts a consumer with manual acknowledgement on a channel of its own. */
  consume(queue: string, options: BrokerConsumeOptions): BrokerConsumer {
    this.#requireOpen('consume');
    const target = this.#vhost.queue(queue, this);
    const listeners: ConsumerListeners = {
      onDelivery: options.onDelivery,
      onCancel: options.onCancel ?? (() => {}),
    };
    const consumer = new QueueConsumer(target, options.prefetch, listeners);
    target.addConsumer(consumer);
    this.#consumers.add(consumer);
    return consumer;
  }

  /** Closes every consumer (their deliveries go back) and deletes the exclusive queues. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    for (const consumer of this.#consumers) consumer.close();
    this.#consumers.clear();
    this.#vhost.deleteQueuesOf(this);
  }

  #requireOpen(operation: string): void {
    if (!this.#open) throw new Error(`${operation}: the connection is closed`);
  }
}
