import { type Clock, systemClock } from '@warren/core';
import { BrokerConnection } from './broker-connection.ts';
import { Vhost } from './vhost.ts';

export interface MemoryBrokerOptions {
  /** Every TTL and expiry runs on it; default {@link systemClock}. Tests pass a fake one. */
  clock?: Clock;
}

/**
 * An embedded, in-process broker with RabbitMQ 3.10's semantics for what Warren uses: direct,
 * topic and fanout exchanges and the default exchange; classic and quorum queues with message
 * TTL, per-message expiration (at the head only), dead-lettering with `x-death` history,
 * priorities and the quorum delivery limit; consumers with prefetch, taking turns. Clients reach
 * it through {@link connect} (as `MemoryTransport` does); the other methods are an admin's view
 * for tests, and act at once.
 */
export class MemoryBroker {
  readonly #vhost: Vhost;

  constructor(options: MemoryBrokerOptions = {}) {
    this.#vhost = new Vhost(options.clock ?? systemClock);
  }

  /** Opens a connection to the broker. */
  connect(options: { name?: string } = {}): BrokerConnection {
    return new BrokerConnection(this.#vhost, options.name);
  }

  /** Messages waiting in a queue (unacknowledged ones not counted); throws if it is missing. */
  messageCount(queue: string): number {
    return this.#vhost.queue(queue).messageCount;
  }

  /** Consumers of a queue; throws if it is missing. */
  consumerCount(queue: string): number {
    return this.#vhost.queue(queue).consumerCount;
  }

  hasQueue(queue: string): boolean {
    return this.#vhost.findQueue(queue) !== undefined;
  }

  hasExchange(name: string): boolean {
    return this.#vhost.hasExchange(name);
  }

  /**
   * Deletes a queue and its messages; its consumers are cancelled (their `onCancel` runs).
   * Returns how many messages were waiting; deleting a missing queue returns 0.
   */
  deleteQueue(queue: string): number {
    return this.#vhost.deleteQueue(queue);
  }

  /** Deletes an exchange and its bindings; a missing one is fine. */
  deleteExchange(name: string): void {
    this.#vhost.deleteExchange(name);
  }

  /** Removes a queue's waiting messages; returns how many. Throws if the queue is missing. */
  purge(queue: string): number {
    return this.#vhost.queue(queue).purge();
  }
}
