import { fileURLToPath } from 'node:url';
import { DEFAULT_RETRY_POLICY, HEADERS } from '@warren/core';
import type { ConsumeMessage, Options } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, Worker } from '../src/index.ts';
import { BrokerProbe, brokerEnv, testBroker, uniquePrefix, waitFor } from './support.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const RETRY = { ...DEFAULT_RETRY_POLICY, maxAttempts: 2, initialDelayMs: 20, jitter: 0 };

/** Headers of a well-formed echo job; each case below breaks one thing. */
function jobHeaders(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'echo', ...extra };
}

const cases: Array<{
  name: string;
  body: Buffer;
  options: Options.Publish;
  reason: string;
  code: string;
}> = [
  {
    name: 'text that is not JSON',
    body: Buffer.from('{"a":"b}'),
    options: { contentType: 'application/json', headers: jobHeaders() },
    reason: 'not-json',
    code: 'WARREN_MALFORMED_MESSAGE',
  },
  {
    name: 'an empty body',
    body: Buffer.alloc(0),
    options: { contentType: 'application/json', headers: jobHeaders() },
    reason: 'empty-body',
    code: 'WARREN_MALFORMED_MESSAGE',
  },
  {
    name: 'a wrong content type',
    body: Buffer.from('{"text":"hi"}'),
    options: { contentType: 'text/plain', headers: jobHeaders() },
    reason: 'unsupported-content-type',
    code: 'WARREN_MALFORMED_MESSAGE',
  },
  {
    name: 'bytes that are not UTF-8',
    body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    options: { contentType: 'application/json', headers: jobHeaders() },
    reason: 'not-utf8',
    code: 'WARREN_MALFORMED_MESSAGE',
  },
  {
    name: 'a missing tenant header',
    body: Buffer.from('{"text":"hi"}'),
    options: { contentType: 'application/json', headers: { [HEADERS.modelType]: 'echo' } },
    reason: 'invalid-envelope',
    code: 'WARREN_MALFORMED_MESSAGE',
  },
  {
    name: 'a body that breaks the input schema',
    body: Buffer.from('{"txt":1}'),
    options: { contentType: 'application/json', headers: jobHeaders() },
    reason: 'schema-violation',
    code: 'WARREN_SCHEMA_VIOLATION',
  },
  {
    name: 'a handler that throws',
    body: Buffer.from('{"text":"hi","failWith":"boom"}'),
    options: { contentType: 'application/json', headers: jobHeaders() },
    reason: 'handler-failed',
    code: 'WARREN_HANDLER_FAILED',
  },
  {
    name: 'a deadline already passed',
    body: Buffer.from('{"text":"hi"}'),
    options: {
      contentType: 'application/json',
      headers: jobHeaders({ [HEADERS.deadline]: Date.now() - 1_000 }),
    },
    reason: 'expired',
    code: 'WARREN_DEADLINE_EXCEEDED',
  },
];

describe('malformed and failing jobs', () => {
  const prefix = uniquePrefix();
  let probe: BrokerProbe;
  let worker: Worker;
  let deadLetters: ConsumeMessage[];
  let results: ConsumeMessage[];

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    const config = parseConfig(
      {
        broker: testBroker(),
        topology: { prefix },
        handlers: [
          { module: ECHO, prefetch: 4, retry: { maxAttempts: 2, initialDelayMs: 20, jitter: 0 } },
        ],
      },
      process.cwd(),
    );
    worker = await Worker.start({ config, logger: pino({ level: 'silent' }), env: brokerEnv() });
    deadLetters = await probe.collect(`${prefix}.dead-letter.echo`);
    const reply = await probe.replyQueue();
    results = reply.messages;

    for (const [index, { body, options }] of cases.entries()) {
      probe.channel.publish(`${prefix}.jobs`, 'echo.public', body, {
        ...options,
        messageId: `bad-${index}`,
      });
    }
    probe.channel.publish(`${prefix}.jobs`, 'echo.public', Buffer.from('{"text":"still here"}'), {
      contentType: 'application/json',
      messageId: 'good',
      replyTo: reply.queue,
      headers: jobHeaders(),
    });
    await waitFor(
      () => deadLetters.length === cases.length && results.length === 1,
      'dead letters and a result',
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await probe?.deleteTopology(prefix, ['echo'], { retry: RETRY });
    await probe?.close();
  });

  it.each(cases.map((c, index) => ({ ...c, index })))(
    'dead-letters $name with reason $reason, the original body and the error code',
    ({ index, body, reason, code }) => {
      const letter = deadLetters.find((m) => m.properties.messageId === `bad-${index}`);

      expect(letter, 'its dead letter').toBeDefined();
      expect(letter!.properties.headers).toMatchObject({
        [HEADERS.reason]: reason,
        [HEADERS.errorCode]: code,
        [HEADERS.handler]: 'echo',
        [HEADERS.sourceQueue]: `${prefix}.jobs.echo`,
      });
      expect(letter!.content.equals(body)).toBe(true);
    },
  );

  it('keeps consuming: a good job after the bad ones gets its result', () => {
    expect(results).toHaveLength(1);
    expect(results[0]!.properties.correlationId).toBe('good');
    expect(JSON.parse(results[0]!.content.toString())).toEqual({ echo: 'still here' });
  });

  it('leaves the work queue empty, with its consumer still attached', async () => {
    const counts = () => worker.consumers[0]!.consumer.counts;
    await waitFor(() => counts().deadLettered === cases.length && counts().succeeded === 1, 'acks');
    const queue = await probe.messageCount(`${prefix}.jobs.echo`);

    expect(queue).toEqual(expect.objectContaining({ messageCount: 0, consumerCount: 1 }));
    expect(worker.consumers[0]!.consumer.state).toBe('consuming');
    // The throwing handler's job is tried twice: one retry, then its dead letter.
    expect(worker.consumers[0]!.consumer.counts).toEqual({
      received: cases.length + 2,
      succeeded: 1,
      retried: 1,
      deferred: 0,
      deadLettered: cases.length,
      expired: 1,
      dropped: 0,
      duplicates: 0,
      requeued: 0,
    });
  });
});
