import type { Channel, ConsumeMessage } from 'amqplib';
import type { ChannelConsumer } from './channel-consumer.ts';

/** What a {@link ConsumerChannel} keeps of a delivery until its settle is sent. */
export interface Unsent {
  readonly message: ConsumeMessage;
  /** Acked, and the ack not yet sent: it goes with the others of this turn. */
  ackDue: boolean;
}

/** What the transport remembers about a delivery until it is settled. */
export interface Receipt extends Unsent {
  readonly consumer: ChannelConsumer;
  readonly line: ConsumerChannel;
  /** Set by the first settle; a later one is ignored. */
  settled: boolean;
}

/** Told when settles could not be sent because the channel had closed under them. */
export type SettleDropped = (count: number, error: unknown) => void;

/**
 * One channel a consumer has consumed on. A consumer gets a new one after each reconnect; its
 * deliveries keep the one they came on, because a delivery tag means something only there.
 *
 * Acks made in one turn of the event loop go to the broker together when the turn ends: one
 * `basic.ack` with `multiple` for the longest run of acked deliveries at the head of those not
 * yet settled, and one each for acked deliveries behind a delivery still unsettled (they are not
 * held back until it is). A nack is sent at once, after the acks made before it, so that no
 * multiple-ack can cover it; none covers an unsettled delivery either, since the run stops at it.
 */
export class ConsumerChannel {
  readonly channel: Channel;
  /** False once the channel closed or its connection was lost: settles on it are dropped. */
  open = true;
  /** True until the consume call returns; a failure then is the caller's to report. */
  starting = true;
  /** The prefetch of the consumer on it now. */
  prefetch: number;
  consumerTag = '';
  /** Deliveries the application has not settled yet. */
  unsettled = 0;
  /** The broker's reason for closing the channel, if it gave one. */
  closedBy: Error | undefined;
  /**
   * Deliveries whose settle has not been sent, by delivery tag. The broker numbers a channel's
   * deliveries in the order it sends them, and a Map iterates in the order of insertion, so the
   * first entries are the lowest tags: what a multiple-ack would cover.
   */
  readonly #unsent = new Map<number, Unsent>();
  /** Acks made since the last flush, in the order they were made. */
  #due: Unsent[] = [];
  #flushScheduled = false;
  readonly #onDropped: SettleDropped;
  readonly #flushAtTurnEnd = (): void => {
    this.#flushScheduled = false;
    this.flush();
  };

  constructor(channel: Channel, prefetch: number, onDropped: SettleDropped) {
    this.channel = channel;
    this.prefetch = prefetch;
    this.#onDropped = onDropped;
  }

  /** A delivery arrived on this channel: it stays unsettled until acked or nacked. */
  track(receipt: Unsent): void {
    this.#unsent.set(receipt.message.fields.deliveryTag, receipt);
    this.unsettled += 1;
  }

  /** Acks `receipt` with the other acks of this turn. */
  ack(receipt: Unsent): void {
    this.unsettled -= 1;
    receipt.ackDue = true;
    this.#due.push(receipt);
    if (!this.#flushScheduled) {
      // setImmediate, not a microtask: each job settles in a promise chain of its own, so a
      // microtask would flush after every ack, while the check phase comes once the turn's I/O
      // callbacks and all their microtasks have run.
      this.#flushScheduled = true;
      setImmediate(this.#flushAtTurnEnd);
    }
  }

  /** Nacks `receipt` now, after sending the acks made before it. */
  nack(receipt: Unsent, requeue: boolean): void {
    this.unsettled -= 1;
    this.flush();
    if (!this.#unsent.delete(receipt.message.fields.deliveryTag) || !this.open) return;
    try {
      this.channel.nack(receipt.message, false, requeue);
    } catch (error) {
      this.#onDropped(1, error);
    }
  }

  /** Sends the acks made since the last flush; on a closed channel, forgets them instead. */
  flush(): void {
    const due = this.#due;
    if (due.length === 0) return;
    this.#due = [];
    if (!this.open) {
      // The broker requeued them with the channel.
      this.#unsent.clear();
      return;
    }

    let highest: Unsent | undefined;
    let covered = 0;
    for (const [tag, receipt] of this.#unsent) {
      if (!receipt.ackDue) break;
      this.#unsent.delete(tag);
      highest = receipt;
      covered += 1;
    }
    try {
      if (highest !== undefined) this.channel.ack(highest.message, covered > 1);
      for (const receipt of due) {
        if (this.#unsent.delete(receipt.message.fields.deliveryTag)) {
          this.channel.ack(receipt.message);
        }
      }
    } catch (error) {
      // amqplib refuses to send on a channel that closed before its 'close' event reached us.
      this.#onDropped(due.length, error);
    }
  }
}
