import type { HeaderValue } from '@warren/core';
import type { StoredMessage } from './stored-message.ts';

/** Why a queue dead-lettered a message, as RabbitMQ names it. */
export type DeathReason = 'rejected' | 'expired' | 'delivery_limit';

/**
 * One entry of RabbitMQ's `x-death` header: a queue that dead-lettered the message for one
 * reason, and how many times it has. Warren's {@link HeaderValue} cannot carry this table, and
 * the RabbitMQ transport leaves it out of deliveries, so the embedded broker keeps it beside the
 * message instead of in its headers.
 */
export interface DeathRecord {
  readonly queue: string;
  readonly reason: DeathReason;
  readonly count: number;
  /** The exchange the message had been published (or dead-lettered) to before this death. */
  readonly exchange: string;
  readonly routingKeys: readonly string[];
  /** When the first of these deaths happened, in seconds since the epoch (AMQP's timestamp). */
  readonly time: number;
  /** The message's `expiration`, which dead-lettering removes. */
  readonly originalExpiration?: string;
}

/** Where a dead-lettered message is published: the queue's dead-letter exchange and key. */
export interface DeadLetterTarget {
  exchange: string;
  routingKey: string;
}

/**
 * The message `queue` dead-letters, as RabbitMQ makes it: without `expiration`, with the death
 * counted in its history (an existing queue-and-reason entry counts up and moves to the front),
 * and, at its first death, with the `x-first-death-*` headers.
 */
export function deadLettered(
  message: StoredMessage,
  queue: string,
  reason: DeathReason,
  nowMs: number,
  target: DeadLetterTarget,
): StoredMessage {
  const { expiration, ...properties } = message.properties;
  if (message.deaths.length === 0) {
    const first: Record<string, HeaderValue> = {
      'x-first-death-reason': reason,
      'x-first-death-queue': queue,
      'x-first-death-exchange': message.exchange,
    };
    properties.headers = { ...properties.headers, ...first };
  }

  const earlier = message.deaths.find((d) => d.queue === queue && d.reason === reason);
  const others = message.deaths.filter((d) => d !== earlier);
  const death: DeathRecord =
    earlier === undefined
      ? {
          queue,
          reason,
          count: 1,
          exchange: message.exchange,
          routingKeys: [message.routingKey],
          time: Math.floor(nowMs / 1000),
          ...(expiration === undefined ? {} : { originalExpiration: expiration }),
        }
      : { ...earlier, count: earlier.count + 1 };

  return {
    body: message.body,
    properties,
    exchange: target.exchange,
    routingKey: target.routingKey,
    deaths: [death, ...others],
  };
}

/**
 * Whether delivering a dead-lettered message to `queue` would close a loop that no consumer
 * takes part in: `queue` is in its history and no death since (that one included) was a
 * rejection. RabbitMQ drops the message for such a queue instead of cycling it for ever.
 */
export function isDeathCycle(deaths: readonly DeathRecord[], queue: string): boolean {
  for (const death of deaths) {
    if (death.reason === 'rejected') return false;
    if (death.queue === queue) return true;
  }
  return false;
}
