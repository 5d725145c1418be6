import {
  definedProperties,
  type HeaderValue,
  MESSAGE_PROPERTY_NAMES,
  type MessageProperties,
} from '@warren/core';
import type { MessageProperties as AmqpProperties, Options } from 'amqplib';

/** AMQP's delivery mode for messages the broker writes to disk. */
const PERSISTENT = 2;

/** amqplib's publish options for Warren's properties, always persistent. */
export function toPublishOptions(properties: MessageProperties): Options.Publish {
  return { ...definedProperties(properties), deliveryMode: PERSISTENT };
}

/** The properties of a received message, and the names of headers Warren cannot represent. */
export interface ReceivedProperties {
  properties: MessageProperties;
  /** Headers whose values are tables, arrays or decimals (such as RabbitMQ's `x-death`). */
  dropped: string[];
}

/** Warren's properties for a message amqplib decoded: only the fields present on the wire. */
export function fromAmqpProperties(received: AmqpProperties): ReceivedProperties {
  const { headers, dropped } = toHeaders(received.headers);
  const properties: MessageProperties = { headers };
  for (const key of MESSAGE_PROPERTY_NAMES.strings) {
    const value: unknown = received[key];
    if (typeof value === 'string') properties[key] = value;
  }
  for (const key of MESSAGE_PROPERTY_NAMES.numbers) {
    const value: unknown = received[key];
    if (typeof value === 'number') properties[key] = value;
  }
  return { properties, dropped };
}

function toHeaders(raw: unknown): { headers: Record<string, HeaderValue>; dropped: string[] } {
  const headers: Record<string, HeaderValue> = {};
  const dropped: string[] = [];
  if (typeof raw !== 'object' || raw === null) return { headers, dropped };

  // for-in rather than Object.entries: this runs for every delivery, and the pairs it would
  // allocate are garbage at once. amqplib's header tables are plain objects with no inherited
  // enumerable keys.
  const table = raw as Record<string, unknown>;
  for (const name in table) {
    const converted = toHeaderValue(table[name]);
    if (converted === undefined) dropped.push(name);
    else headers[name] = converted;
  }
  return { headers, dropped };
}

/**
 * amqplib decodes longs as numbers (exact up to 2^53), byte strings as Buffers and timestamps as
 * `{ '!': 'timestamp', value }`. Tables, arrays and decimals have no {@link HeaderValue} form.
 */
function toHeaderValue(value: unknown): HeaderValue {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return value;
  }
  if (Buffer.isBuffer(value)) return value.toString('utf-8');
  if (isTimestamp(value)) return value.value;
  return undefined;
}

function isTimestamp(value: unknown): value is { value: number } {
  if (typeof value !== 'object' || value === null) return false;
  const tagged = value as { '!'?: unknown; value?: unknown };
  return tagged['!'] === 'timestamp' && typeof tagged.value === 'number';
}
