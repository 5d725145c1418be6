import type { Clock, MessageProperties, Timer } from '@warren/core';
import type { DeathReason } from './dead-letter.ts';
import { nextTurn } from './next-turn.ts';
import type { QueueDeclaration, QueueSettings } from './queue-arguments.ts';
import type { BrokerDelivery, QueueConsumer } from './queue-consumer.ts';
import type { QueueEntry } from './queue-entry.ts';
import { ReadyMessages } from './ready-messages.ts';
import type { StoredMessage } from './stored-message.ts';

/** What a queue needs from the broker around it. */
export interface QueueHost {
  readonly clock: Clock;
  /** Routes a message this queue dead-letters through its dead-letter exchange, if it has one. */
  deadLetter(queue: MemoryQueue, message: StoredMessage, reason: DeathReason): void;
}

/**
 * How an unacknowledged message comes back: `requeue` is a consumer's nack with requeue,
 * `recover` its channel closing.
 */
export type ReturnKind = 'requeue' | 'recover';

/**
 * One queue: the messages waiting, the consumers taking turns at them, expiry at the head, and
 * what happens to a message that comes back.
 */
export class MemoryQueue {
  readonly #host: QueueHost;
  readonly #ready: ReadyMessages;
  #consumers: QueueConsumer[] = [];
  /** Where the round-robin over consumers starts next. */
  #cursor = 0;
  #nextSeq = 1;
  #expiryTimer: Timer | undefined;
  #expiryDue: number | undefined;
  #pumpScheduled = false;
  #deleted = false;

  constructor(
    readonly name: string,
    readonly declaration: QueueDeclaration,
    readonly settings: QueueSettings,
    /** The connection an exclusive queue belongs to. */
    readonly owner: object | undefined,
    host: QueueHost,
  ) {
    this.#host = host;
    this.#ready = new ReadyMessages(settings.maxPriority);
  }

  /** Messages waiting for a consumer (unacknowledged ones not counted, as RabbitMQ counts). */
  get messageCount(): number {
    return this.#ready.size;
  }

  get consumerCount(): number {
    return this.#consumers.length;
  }

  /** Adds a routed message at the tail. */
  enqueue(message: StoredMessage): void {
    if (this.#deleted) return;
    const entry: QueueEntry = {
      message,
      seq: this.#nextSeq++,
      priority: this.#priorityOf(message.properties),
      expiresAt: this.#expiryOf(message.properties),
      returns: 0,
      redelivered: false,
    };
    this.#ready.insert(entry);
    this.schedulePump();
  }

  addConsumer(consumer: QueueConsumer): void {
    this.#consumers.push(consumer);
    this.schedulePump();
  }

  removeConsumer(consumer: QueueConsumer): void {
    this.#consumers = this.#consumers.filter((c) => c !== consumer);
  }

  /**
   * Takes back an unacknowledged message, marked redelivered. A classic queue puts it back at
   * its place; a quorum queue (RabbitMQ 3.10) puts a requeued one at the tail and a recovered
   * one at its place, counts the return in `x-delivery-count`, and dead-letters the message
   * once it has come back more often than `x-delivery-limit`.
   */
  returnEntry(entry: QueueEntry, kind: ReturnKind): void {
    if (this.#deleted) return;
    entry.redelivered = true;
    entry.returns += 1;
    const limit = this.settings.deliveryLimit;
    if (limit !== undefined && entry.returns > limit) {
      this.#host.deadLetter(this, entry.message, 'delivery_limit');
      return;
    }
    if (kind === 'requeue' && this.settings.queueType === 'quorum') entry.seq = this.#nextSeq++;
    this.#ready.insert(entry);
    this.schedulePump();
  }

  /** Dead-letters a message a consumer rejected without requeue. */
  reject(entry: QueueEntry): void {
    if (this.#deleted) return;
    this.#host.deadLetter(this, entry.message, 'rejected');
  }

  /** Removes every waiting message; returns how many. */
  purge(): number {
    const count = this.#ready.clear();
    this.#cancelExpiryTimer();
    return count;
  }

  /** Deletes the queue: its messages go, its consumers are cancelled. Returns the count. */
  delete(): number {
    if (this.#deleted) return 0;
    const count = this.purge();
    this.#deleted = true;
    const consumers = this.#consumers;
    this.#consumers = [];
    for (const consumer of consumers) consumer.cancelledByQueue(`queue '${this.name}' deleted`);
    return count;
  }

  /** Hands out messages on a later turn; several calls before then make one pass. */
  schedulePump(): void {
    if (this.#pumpScheduled || this.#deleted) return;
    this.#pumpScheduled = true;
    nextTurn(() => this.#pump());
  }

  #pump(): void {
    this.#pumpScheduled = false;
    if (this.#deleted) return;
    const now = this.#host.clock.now();
    // Listeners run after the pass, so a settle they make cannot change the queue under it.
    const handedOut: [QueueConsumer, BrokerDelivery][] = [];
    for (;;) {
      for (const expired of this.#ready.takeExpired(now)) {
        this.#host.deadLetter(this, expired.message, 'expired');
      }
      const consumer = this.#ready.size > 0 ? this.#nextConsumer() : undefined;
      if (consumer === undefined) break;
      const entry = this.#ready.shift()!;
      handedOut.push([consumer, consumer.assign(entry, this.#deliveredProperties(entry))]);
    }
    this.#armExpiryTimer(now);
    for (const [consumer, delivery] of handedOut) consumer.emit(delivery);
  }

  /** The next consumer in turn that may take one more message. */
  #nextConsumer(): QueueConsumer | undefined {
    const count = this.#consumers.length;
    for (let step = 0; step < count; step += 1) {
      const index = (this.#cursor + step) % count;
      const consumer = this.#consumers[index]!;
      if (!consumer.hasCapacity) continue;
      this.#cursor = index + 1;
      return consumer;
    }
    return undefined;
  }

  #deliveredProperties(entry: QueueEntry): MessageProperties {
    const properties = entry.message.properties;
    if (this.settings.queueType !== 'quorum' || entry.returns === 0) return properties;
    return { ...properties, headers: { ...properties.headers, 'x-delivery-count': entry.returns } };
  }

  #armExpiryTimer(now: number): void {
    const due = this.#ready.nextExpiry();
    if (due === this.#expiryDue) return;
    this.#cancelExpiryTimer();
    if (due === undefined) return;
    this.#expiryDue = due;
    this.#expiryTimer = this.#host.clock.setTimer(() => {
      this.#expiryTimer = undefined;
      this.#expiryDue = undefined;
      this.schedulePump();
    }, due - now);
  }

  #cancelExpiryTimer(): void {
    this.#expiryTimer?.cancel();
    this.#expiryTimer = undefined;
    this.#expiryDue = undefined;
  }

  #priorityOf(properties: MessageProperties): number {
    const max = this.settings.maxPriority;
    if (max === undefined) return 0;
    return Math.min(max, Math.max(0, Math.trunc(properties.priority ?? 0)));
  }

  /** The earlier of the queue's TTL and the message's own `expiration`, from now. */
  #expiryOf(properties: MessageProperties): number | undefined {
    const ttls = [this.settings.messageTtl, parseExpiration(properties.expiration)];
    const defined = ttls.filter((ttl): ttl is number => ttl !== undefined);
    if (defined.length === 0) return undefined;
    return this.#host.clock.now() + Math.min(...defined);
  }
}

/** An `expiration` the broker accepted at publish (a decimal string) as milliseconds. */
function parseExpiration(expiration: string | undefined): number | undefined {
  return expiration === undefined ? undefined : Number(expiration);
}
