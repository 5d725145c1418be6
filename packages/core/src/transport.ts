/**
 * The seam between Warren's actors and a message broker. `core` defines it; `@warren/amqp`
 * implements it on RabbitMQ (and a later embedded broker implements it in memory).
 */

/** AMQP header values Warren writes and reads. Numbers are sent as AMQP longs or doubles. */
export type HeaderValue = string | number | boolean | null | undefined;

/** The AMQP basic properties Warren uses, with explicit types. */
export interface MessageProperties {
  messageId?: string;
  correlationId?: string;
  replyTo?: string;
  contentType?: string;
  contentEncoding?: string;
  /** 0-255; RabbitMQ honours it only on queues declared with a maximum priority. */
  priority?: number;
  /** Per-message TTL in milliseconds, as a decimal string (AMQP's own rule). */
  expiration?: string;
  /** Seconds since the epoch (AMQP's timestamp property). */
  timestamp?: number;
  type?: string;
  appId?: string;
  /**
   * The broker account that published the message. RabbitMQ refuses a publish whose `user_id` is
   * not the connection's user, so a consumer can trust it.
   */
  userId?: string;
  headers?: Record<string, HeaderValue>;
}

/** One message handed to a consumer. Settle it exactly once, through the transport. */
export interface Delivery {
  readonly body: Buffer;
  readonly properties: MessageProperties;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  /** The broker's tag for this delivery on the channel that received it. */
  readonly deliveryTag: number;
  /** The queue it was consumed from. */
  readonly queue: string;
}

/** Where to publish: an exchange and a routing key (exchange `''` with a queue name is direct). */
export interface PublishTarget {
  exchange: string;
  routingKey: string;
}

export interface PublishOptions {
  /** Fail the publish if no queue receives the message (instead of the broker dropping it). */
  mandatory?: boolean;
}

/** Everything declared for one model type. Names come from {@link topologyFor}. */
export interface QueueTopology {
  /** The exchange producers publish jobs to (topic). */
  jobsExchange: string;
  /** The work queue (quorum by default). */
  queue: string;
  /** Binding patterns from {@link jobsExchange} to {@link queue}. */
  bindings: string[];
  /**
   * Bindings an earlier version made to {@link queue} that must not stay: removed when the
   * topology is declared (the public queue's `<modelType>.#`, which would take every scope).
   */
  retiredBindings?: string[];
  queueType: 'quorum' | 'classic';
  /** The exchange dead letters go to (direct), and the queue that keeps them. */
  deadLetterExchange: string;
  deadLetterQueue: string;
  /** Routing key of this model type's dead letters on {@link deadLetterExchange}. */
  deadLetterRoutingKey: string;
  /** The exchange results are published to (topic) when a job names no reply-to. */
  resultsExchange: string;
  /** Highest priority the work queue honours (classic queues only); absent means none. */
  maxPriority?: number;
  /**
   * Quorum queues: how many times the broker delivers a message (redeliveries after a crash or
   * a requeue included) before it dead-letters it instead. Isolates poison messages.
   */
  deliveryLimit?: number;
  /**
   * One queue per backoff delay. A message published to one waits `delayMs` (the queue's
   * message TTL), then the broker dead-letters it through the default exchange back to
   * {@link queue}. Each queue holds one delay only: a per-message TTL expires only at the head.
   */
  delayQueues: DelayQueue[];
}

export interface DelayQueue {
  name: string;
  delayMs: number;
}

/** A live subscription; cancelling stops new deliveries (unsettled ones stay ours to settle). */
export interface Subscription {
  cancel(): Promise<void>;
  /** Changes how many unacked deliveries the broker may send (1 or more). */
  setPrefetch(count: number): Promise<void>;
}

/** Called when the broker cancels the consumer (queue deleted, node lost). */
export type CancelListener = (reason: string) => void;

export interface ConsumeOptions {
  /** How many unacknowledged deliveries the broker may send at once. Always set, never 0. */
  prefetch: number;
  onCancel?: CancelListener;
}

/**
 * What a transport that recovers its broker connection reports about it:
 * - `lost`: the connection dropped; deliveries not yet settled go back to their queues, settles
 *   of them are dropped, and recovery starts.
 * - `recovering`: reconnect attempt `attempt` starts, `delayMs` after the previous failure
 *   (`cause`: why the connection was lost, or why the previous attempt failed).
 * - `recovered`: connected again after `attempts` attempts and `downtimeMs`; topology, publishing
 *   and every live subscription are restored.
 * - `gave-up`: not recovered within the transport's limit; it stays unusable, every live
 *   subscription's `onCancel` has been called and buffered publishes have been rejected.
 * - `rotated`: the connection now in use was dialled with new credentials (user `username`) and
 *   carries publishing and every subscription; the previous one closes once what it delivered is
 *   settled (docs/credentials.md).
 * - `rotation-failed`: a connection with the new credentials could not be made ready (`cause`);
 *   the previous one goes on, and attempt `attempt + 1` follows in `retryInMs`.
 */
export type ConnectionEvent =
  | { type: 'lost'; cause: Error }
  | { type: 'recovering'; attempt: number; delayMs: number; cause: Error }
  | { type: 'recovered'; attempts: number; downtimeMs: number }
  | { type: 'gave-up'; attempts: number; downtimeMs: number; cause: Error }
  | { type: 'rotated'; username: string }
  | {
      type: 'rotation-failed';
      username: string | undefined;
      attempt: number;
      retryInMs: number;
      cause: Error;
    };

/** Told of each {@link ConnectionEvent}; a listener that throws is logged, not rethrown. */
export type ConnectionListener = (event: ConnectionEvent) => void;

export interface Transport {
  /** Opens connections and channels; safe to call more than once. */
  connect(): Promise<void>;
  /**
   * The broker account this transport is connected as, when the broker has accounts: workers
   * stamp it as the `user_id` of what they republish (see relay.ts). Absent: nothing is stamped.
   */
  readonly account?: string | undefined;
  /** Declares exchanges, queues and bindings; idempotent. */
  declare(topology: QueueTopology): Promise<void>;
  /**
   * Declares a server-named queue that lives as long as this connection, for results addressed
   * to this client through `replyTo`; resolves to its name.
   */
  declareReplyQueue(): Promise<string>;
  consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Subscription>;
  /**
   * Publishes and resolves once the broker confirms; rejects on a nack or a closed channel, and
   * with `mandatory`, rejects with `UnroutableError` when no queue received the message.
   */
  publish(
    target: PublishTarget,
    body: Buffer,
    properties: MessageProperties,
    options?: PublishOptions,
  ): Promise<void>;
  ack(delivery: Delivery): void;
  /** Rejects a delivery; with `requeue: false` the queue's dead-letter exchange receives it. */
  nack(delivery: Delivery, options: { requeue: boolean }): void;
  close(): Promise<void>;
  /**
   * Optional: transports that recover a lost broker connection report its changes here.
   * Returns a function that removes the listener.
   */
  onConnectionEvent?(listener: ConnectionListener): () => void;
}

/** AMQP carries the prefetch count in 16 bits; 0 would mean no limit, which Warren never wants. */
const MAX_PREFETCH = 65_535;

/** Throws a RangeError unless `prefetch` is an integer from 1 to 65535. */
export function checkPrefetch(prefetch: number): void {
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > MAX_PREFETCH) {
    throw new RangeError(
      `prefetch: expected an integer from 1 to ${MAX_PREFETCH}, found ${prefetch}`,
    );
  }
}

/** The AMQP basic properties Warren carries, by the type of their values. */
export const MESSAGE_PROPERTY_NAMES = {
  strings: [
    'messageId',
    'correlationId',
    'replyTo',
    'contentType',
    'contentEncoding',
    'expiration',
    'type',
    'appId',
    'userId',
  ],
  numbers: ['priority', 'timestamp'],
} as const;

/**
 * A copy of `properties` with only the fields that have values, as the wire carries them: AMQP
 * has no `undefined`, so absent properties and `undefined` headers are left out.
 */
export function definedProperties(properties: MessageProperties): MessageProperties {
  const copy: MessageProperties = {};
  for (const key of MESSAGE_PROPERTY_NAMES.strings) {
    const value = properties[key];
    if (value !== undefined) copy[key] = value;
  }
  for (const key of MESSAGE_PROPERTY_NAMES.numbers) {
    const value = properties[key];
    if (value !== undefined) copy[key] = value;
  }
  if (properties.headers !== undefined) {
    copy.headers = Object.fromEntries(
      Object.entries(properties.headers).filter(([, value]) => value !== undefined),
    );
  }
  return copy;
}
