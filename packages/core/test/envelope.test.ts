import { describe, expect, it } from 'vitest';
import type { Delivery } from '../src/index.ts';
import {
  deadLetterProperties,
  decodeEnvelope,
  decodeJsonBody,
  encodeJob,
  HEADERS,
  MalformedMessageError,
  SchemaViolationError,
} from '../src/index.ts';

function malformedReason(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof MalformedMessageError) return error.reason;
    throw error;
  }
  throw new Error('expected a MalformedMessageError, nothing was thrown');
}

describe('the job envelope', () => {
  it('survives encoding to AMQP properties and decoding back', () => {
    const { body, properties } = encodeJob({
      modelType: 'sentence-embedding',
      tenant: 'acme',
      scope: 'restricted',
      priority: 7,
      deadline: 1_764_860_000_123,
      messageId: 'job-1',
      replyTo: 'amq.gen-reply',
      trace: {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        baggage: 'tenant=acme',
      },
      input: { text: 'héllo' },
      now: () => 1_764_859_000_000,
    });

    const envelope = decodeEnvelope(properties);

    expect(envelope).toEqual({
      messageId: 'job-1',
      tenant: 'acme',
      scope: 'restricted',
      priority: 7,
      deadline: 1_764_860_000_123,
      attempt: 1,
      modelType: 'sentence-embedding',
      contentType: 'application/json',
      trace: {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        baggage: 'tenant=acme',
      },
      replyTo: 'amq.gen-reply',
      createdAt: 1_764_859_000_000,
    });
    expect(properties.timestamp).toBe(1_764_859_000);
    expect(decodeJsonBody(body, envelope.contentType)).toEqual({ text: 'héllo' });
  });

  it('fills defaults for scope, priority and attempt when a producer leaves them out', () => {
    const envelope = decodeEnvelope({
      messageId: 'm',
      contentType: 'application/json',
      headers: { [HEADERS.tenant]: 't', [HEADERS.modelType]: 'text-classification' },
    });

    expect(envelope).toMatchObject({ scope: 'public', priority: 0, attempt: 1 });
    expect(envelope.deadline).toBeUndefined();
  });

  it('accepts a deadline sent as a decimal string by producers that cannot send longs', () => {
    const envelope = decodeEnvelope({
      messageId: 'm',
      headers: {
        [HEADERS.tenant]: 't',
        [HEADERS.modelType]: 'x',
        [HEADERS.deadline]: '1764860000123',
      },
    });

    expect(envelope.deadline).toBe(1_764_860_000_123);
  });

  it.each([
    [
      'a missing message id',
      { headers: { [HEADERS.tenant]: 't', [HEADERS.modelType]: 'x' } },
      'message_id',
    ],
    ['a missing tenant', { messageId: 'm', headers: { [HEADERS.modelType]: 'x' } }, HEADERS.tenant],
    [
      'a deadline that is not an integer',
      {
        messageId: 'm',
        headers: { [HEADERS.tenant]: 't', [HEADERS.modelType]: 'x', [HEADERS.deadline]: 'soon' },
      },
      HEADERS.deadline,
    ],
    [
      'a priority above 9',
      {
        messageId: 'm',
        priority: 12,
        headers: { [HEADERS.tenant]: 't', [HEADERS.modelType]: 'x' },
      },
      'priority',
    ],
    [
      'a tenant with a routing wildcard',
      { messageId: 'm', headers: { [HEADERS.tenant]: 'a#', [HEADERS.modelType]: 'x' } },
      HEADERS.tenant,
    ],
  ])('refuses %s and names the field', (_, properties, field) => {
    expect(() => decodeEnvelope(properties)).toThrow(field);
    expect(malformedReason(() => decodeEnvelope(properties))).toBe('invalid-envelope');
  });
});

describe('decoding a JSON body', () => {
  it.each([
    ['text that is not JSON', Buffer.from('{"a":"b}'), 'application/json', 'not-json'],
    ['an empty body', Buffer.alloc(0), 'application/json', 'empty-body'],
    [
      'bytes that are not UTF-8',
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
      'application/json',
      'not-utf8',
    ],
    ['a content type other than JSON', Buffer.from('{}'), 'text/plain', 'unsupported-content-type'],
    ['a missing content type', Buffer.from('{}'), '', 'unsupported-content-type'],
    [
      'a charset other than UTF-8',
      Buffer.from('{}'),
      'application/json; charset=latin1',
      'unsupported-content-type',
    ],
  ])('refuses %s with its own reason', (_, body, contentType, reason) => {
    expect(malformedReason(() => decodeJsonBody(body, contentType))).toBe(reason);
  });

  it('accepts JSON with an explicit UTF-8 charset, in any case, quoted or not', () => {
    expect(decodeJsonBody(Buffer.from('[1,2]'), 'application/json; charset=UTF-8')).toEqual([1, 2]);
    expect(decodeJsonBody(Buffer.from('[3]'), 'Application/JSON;charset="utf-8"')).toEqual([3]);
    expect(
      malformedReason(() =>
        decodeJsonBody(Buffer.from('{}'), 'application/json; charset="latin1"'),
      ),
    ).toBe('unsupported-content-type');
  });
});

describe('a dead letter', () => {
  it('keeps the original properties and adds the reason headers', () => {
    const { properties } = encodeJob({ modelType: 'x', tenant: 't', input: {}, messageId: 'm-9' });
    const delivery: Delivery = {
      body: Buffer.from('{}'),
      properties,
      exchange: 'warren.jobs',
      routingKey: 'x.public',
      redelivered: false,
      deliveryTag: 1,
      queue: 'warren.jobs.x',
    };

    const dead = deadLetterProperties(delivery, {
      error: new SchemaViolationError('input.text: expected string, found nothing'),
      handler: 'embed',
      failedAt: 1_764_860_000_000,
      attempt: 2,
    });

    expect(dead.messageId).toBe('m-9');
    expect(dead.headers).toMatchObject({
      [HEADERS.tenant]: 't',
      [HEADERS.errorCode]: 'WARREN_SCHEMA_VIOLATION',
      [HEADERS.reason]: 'schema-violation',
      [HEADERS.errorMessage]: 'input.text: expected string, found nothing',
      [HEADERS.handler]: 'embed',
      [HEADERS.failedAt]: 1_764_860_000_000,
      [HEADERS.firstFailedAt]: 1_764_860_000_000,
      [HEADERS.attempts]: 2,
      [HEADERS.sourceQueue]: 'warren.jobs.x',
    });
  });
});
