import type { HeaderValue, MessageProperties } from '@warren/core';
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

const STRING_PROPERTIES = [
  'messageId',
  'correlationId',
  'replyTo',
  'contentType',
  'contentEncoding',
  'expiration',
  'type',
  'appId',
] as const;

const NUMBER_PROPERTIES = ['priority', 'timestamp'] as const;

/**
 * A copy of `properties` with only the fields that have values, as the wire would carry them:
 * AMQP has no `undefined`, so absent properties and `undefined` headers are left out.
 */
export function definedProperties(properties: MessageProperties): MessageProperties {
  const copy: MessageProperties = {};
  for (const key of STRING_PROPERTIES) {
    const value = properties[key];
    if (value !== undefined) copy[key] = value;
  }
  for (const key of NUMBER_PROPERTIES) {
    const value = properties[key];
    if (value !== undefined) copy[key] = value;
  }
  if (properties.headers !== undefined) copy.headers = definedHeaders(properties.headers);
  return copy;
}

function definedHeaders(headers: Record<string, HeaderValue>): Record<string, HeaderValue> {
  return Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== undefined));
}
