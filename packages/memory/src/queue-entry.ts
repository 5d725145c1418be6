import type { StoredMessage } from './stored-message.ts';

/** A message in one queue, with what that queue knows about it. */
export interface QueueEntry {
  readonly message: StoredMessage;
  /** Its place in the queue: within one priority, entries leave in this order. */
  seq: number;
  /** The message's priority, capped at the queue's maximum; 0 in a queue without priorities. */
  readonly priority: number;
  /** Epoch milliseconds from which it is expired, once at the head; undefined: never. */
  readonly expiresAt: number | undefined;
  /** How many times it came back unacknowledged (requeued, or its channel closed). */
  returns: number;
  redelivered: boolean;
}
