import type { MessageProperties } from '@warren/core';
import type { DeathRecord } from './dead-letter.ts';
import type { MemoryQueue } from './memory-queue.ts';
import { nextTurn, rethrowLater } from './next-turn.ts';
import type { QueueEntry } from './queue-entry.ts';

/** A message handed to a consumer of the embedded broker. */
export interface BrokerDelivery {
  readonly body: Buffer;
  /** As delivered: a quorum queue adds `x-delivery-count` to a message that came back. */
  readonly properties: MessageProperties;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  /** Counts from 1 per consumer, as AMQP counts per channel (one consumer each here). */
  readonly deliveryTag: number;
  readonly queue: string;
  /** The message's `x-death` history, newest first. */
  readonly deaths: readonly DeathRecord[];
}

/** Where a consumer's deliveries and cancellation go. Neither should throw. */
export interface ConsumerListeners {
  onDelivery(delivery: BrokerDelivery): void;
  /** The broker cancelled the consumer because its queue was deleted. */
  onCancel(reason: string): void;
}

/**
 * A consumer of one queue on a channel of its own, with manual acknowledgement: it holds its
 * unacknowledged deliveries, and a delivery can only be settled through it.
 */
export interface BrokerConsumer {
  readonly queue: string;
  /** Acknowledges a delivery; false if the tag is not outstanding (settled, or channel closed). */
  ack(deliveryTag: number): boolean;
  /** Rejects a delivery: back to the queue, or to its dead-letter exchange without requeue. */
  nack(deliveryTag: number, options: { requeue: boolean }): boolean;
  /** How many unacknowledged deliveries it may hold; takes effect at once, both ways. */
  setPrefetch(count: number): void;
  /** Stops new deliveries; outstanding ones can still be settled. */
  cancel(): void;
  /** Closes the channel: outstanding deliveries go back to the queue, redelivered. */
  close(): void;
}

/**
 * - `consuming`: takes messages while it holds fewer than its prefetch.
 * - `cancelled`: takes none (our cancel, or the queue's deletion); settles still work.
 * - `closed`: the channel is gone, and what it held went back to the queue.
 */
type ConsumerState = 'consuming' | 'cancelled' | 'closed';

/** A {@link BrokerConsumer} on a {@link MemoryQueue}. */
export class QueueConsumer implements BrokerConsumer {
  readonly #queue: MemoryQueue;
  readonly #listeners: ConsumerListeners;
  readonly #unacked = new Map<number, QueueEntry>();
  #prefetch: number;
  #nextTag = 1;
  #state: ConsumerState = 'consuming';

  constructor(queue: MemoryQueue, prefetch: number, listeners: ConsumerListeners) {
    this.#queue = queue;
    this.#prefetch = prefetch;
    this.#listeners = listeners;
  }

  get queue(): string {
    return this.#queue.name;
  }

  /** Whether the queue may hand it one more message now. */
  get hasCapacity(): boolean {
    return this.#state === 'consuming' && this.#unacked.size < this.#prefetch;
  }

  /** Records an entry the queue hands out; {@link emit} delivers it once the pass is over. */
  assign(entry: QueueEntry, properties: MessageProperties): BrokerDelivery {
    const deliveryTag = this.#nextTag++;
    this.#unacked.set(deliveryTag, entry);
    const { message } = entry;
    return {
      body: Buffer.from(message.body),
      properties: copyOf(properties),
      exchange: message.exchange,
      routingKey: message.routingKey,
      redelivered: entry.redelivered,
      deliveryTag,
      queue: this.#queue.name,
      deaths: message.deaths,
    };
  }

  /** Calls the delivery listener, unless the channel closed (and returned it) meanwhile. */
  emit(delivery: BrokerDelivery): void {
    if (this.#state === 'closed' || !this.#unacked.has(delivery.deliveryTag)) return;
    try {
      this.#listeners.onDelivery(delivery);
    } catch (error) {
      rethrowLater(error);
    }
  }

  ack(deliveryTag: number): boolean {
    const entry = this.#take(deliveryTag);
    if (entry === undefined) return false;
    this.#queue.schedulePump();
    return true;
  }

  nack(deliveryTag: number, options: { requeue: boolean }): boolean {
    const entry = this.#take(deliveryTag);
    if (entry === undefined) return false;
    if (options.requeue) this.#queue.returnEntry(entry, 'requeue');
    else this.#queue.reject(entry);
    this.#queue.schedulePump();
    return true;
  }

  setPrefetch(count: number): void {
    this.#prefetch = count;
    this.#queue.schedulePump();
  }

  cancel(): void {
    if (this.#state !== 'consuming') return;
    this.#state = 'cancelled';
    this.#queue.removeConsumer(this);
  }

  close(): void {
    if (this.#state === 'closed') return;
    this.cancel();
    this.#state = 'closed';
    const outstanding = [...this.#unacked.values()];
    this.#unacked.clear();
    for (const entry of outstanding) this.#queue.returnEntry(entry, 'recover');
  }

  /** The queue was deleted: no more deliveries, and the listener hears why on a later turn. */
  cancelledByQueue(reason: string): void {
    if (this.#state !== 'consuming') return;
    this.#state = 'cancelled';
    nextTurn(() => {
      try {
        this.#listeners.onCancel(reason);
      } catch (error) {
        rethrowLater(error);
      }
    });
  }

  #take(deliveryTag: number): QueueEntry | undefined {
    if (this.#state === 'closed') return undefined;
    const entry = this.#unacked.get(deliveryTag);
    this.#unacked.delete(deliveryTag);
    return entry;
  }
}

/** A copy the listener may change without changing what the queue keeps. */
function copyOf(properties: MessageProperties): MessageProperties {
  const copy = { ...properties };
  if (properties.headers !== undefined) copy.headers = { ...properties.headers };
  return copy;
}
