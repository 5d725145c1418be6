import type { MessageProperties } from '@warren/core';
import type { DeathRecord } from './dead-letter.ts';

/** A message as the broker keeps it. Never changed once made; dead-lettering makes a new one. */
export interface StoredMessage {
  readonly body: Buffer;
  /** Only the properties that were set; headers without `undefined` values. */
  readonly properties: MessageProperties;
  /** The exchange it was last published or dead-lettered to. */
  readonly exchange: string;
  readonly routingKey: string;
  /** RabbitMQ's `x-death`, newest first; empty until it is first dead-lettered. */
  readonly deaths: readonly DeathRecord[];
}
