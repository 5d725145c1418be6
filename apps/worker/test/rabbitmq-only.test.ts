import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmqpTransport } from '@warren/amqp';
import { HEADERS, topologyFor } from '@warren/core';
import type { ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, Worker } from '../src/index.ts';
import { AMQP_URL, BrokerProbe, uniquePrefix, waitFor } from './support.ts';

// These need a broker in another process: a crash must not take the broker down with the
// worker, and the headers must come from a client other than Warren's. The embedded broker
// lives in the worker's process and speaks no AMQP, so it cannot run them.

const BIN = fileURLToPath(new URL('../bin/warren-worker.js', import.meta.url));
const CRASHY = fileURLToPath(new URL('./fixtures/crashy.ts', import.meta.url));
const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));

let probe: BrokerProbe;
let dir: string;
beforeAll(async () => {
  probe = await BrokerProbe.open();
  dir = await mkdtemp(join(tmpdir(), 'warren-rabbitmq-only-'));
});
afterAll(async () => {
  await probe?.close();
  await rm(dir, { recursive: true, force: true });
});

function startWorker(config: string): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, '--config', config], {
    env: { ...process.env, AMQP_URL },
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal === null ? code : -1)),
  );
  return { child, exited };
}

describe('a poison job that kills the worker process', () => {
  const prefix = uniquePrefix();
  afterAll(() => probe.deleteTopology(prefix, ['crashy'], { deliveryLimit: 2 }));

  it('is isolated by the delivery limit, and no innocent prefetched job is dead-lettered', async () => {
    const config = join(dir, 'crashy.json');
    await writeFile(
      config,
      JSON.stringify({
        topology: { prefix, deliveryLimit: 2 },
        handlers: [{ module: CRASHY, prefetch: 8 }],
      }),
    );
    const reply = await probe.replyQueue();
    // Declare the topology as the worker will, then queue the poison ahead of 20 jobs.
    const declarer = new AmqpTransport({ url: AMQP_URL });
    await declarer.connect();
    await declarer.declare(topologyFor('crashy', { prefix, deliveryLimit: 2 }));
    await declarer.close();

    const publish = (input: object, messageId: string) =>
      probe.channel.publish(`${prefix}.jobs`, 'crashy.public', Buffer.from(JSON.stringify(input)), {
        contentType: 'application/json',
        messageId,
        replyTo: reply.queue,
        headers: { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'crashy' },
      });
    publish({ key: 'poison', crash: true }, 'poison');
    for (let i = 0; i < 20; i += 1) publish({ key: `innocent-${i}` }, `innocent-${i}`);
    const deadLetters = await probe.collect(`${prefix}.dead-letter.crashy`);

    let crashes = 0;
    let worker = startWorker(config);
    const deadline = Date.now() + 60_000;
    while (reply.messages.length < 20 || deadLetters.length < 1) {
      if (Date.now() > deadline) throw new Error('the poison job was not isolated within 60 s');
      const outcome = await Promise.race([
        worker.exited,
        sleep(100).then(() => 'running' as const),
      ]);
      if (outcome === 'running') continue;
      crashes += 1;
      worker = startWorker(config);
    }
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);

    expect(crashes).toBeGreaterThanOrEqual(2);
    expect(deadLetters.map((m) => m.properties.messageId)).toEqual(['poison']);
    expect(deadLetters[0]!.properties.headers?.['x-first-death-reason']).toBe('delivery_limit');
    const answered = new Set(reply.messages.map((m) => m.properties.correlationId));
    expect(answered.size).toBe(20);
  }, 90_000);
});

describe('headers of every AMQP type from a plain amqplib client', () => {
  const prefix = uniquePrefix();
  let worker: Worker;

  beforeAll(async () => {
    const config = parseConfig({ topology: { prefix }, handlers: [{ module: ECHO }] }, dir);
    worker = await Worker.start({ config, logger: pino({ level: 'silent' }), env: { AMQP_URL } });
  });
  afterAll(async () => {
    await worker?.stop();
    await probe.deleteTopology(prefix, ['echo']);
  });

  it('are decoded or refused, never crash the consumer, and every job ends somewhere', async () => {
    const reply = await probe.replyQueue();
    const deadLetters = await probe.collect(`${prefix}.dead-letter.echo`);
    const exotic = {
      small: 7,
      big: 2 ** 40,
      negative: -(2 ** 35),
      float: 1.5,
      stamp: { '!': 'timestamp', value: 1_764_860_000 },
      unicode: 'naïve — 東京 🚀',
      binary: Buffer.from([0, 255, 1, 254]),
      table: { nested: { deeper: [1, 'two', { three: true }] } },
      list: [1, 'x', false],
      flag: true,
      nothing: null,
    };
    const cases: Array<[string, Record<string, unknown>]> = [
      ['plain', {}],
      ['exotic extras', exotic],
      ['tenant as a table', { [HEADERS.tenant]: { a: 1 } }],
      ['tenant as bytes', { [HEADERS.tenant]: Buffer.from('acme') }],
      ['deadline as a timestamp', { [HEADERS.deadline]: { '!': 'timestamp', value: 1 } }],
      ['attempt as a float', { [HEADERS.attempt]: 2.5 }],
      ['scope as a list', { [HEADERS.scope]: ['a', 'b'] }],
      ['traceparent as a number', { traceparent: 42 }],
    ];
    for (const [name, headers] of cases) {
      probe.channel.publish(
        `${prefix}.jobs`,
        'echo.public',
        Buffer.from(JSON.stringify({ text: name })),
        {
          contentType: 'application/json',
          messageId: name,
          replyTo: reply.queue,
          headers: { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'echo', ...headers },
        },
      );
    }
    await waitFor(
      () => reply.messages.length + deadLetters.length === cases.length,
      'every job to end',
    );

    const ended = (messages: ConsumeMessage[], key: 'correlationId' | 'messageId') =>
      messages.map((m) => m.properties[key] as string).sort();
    expect(
      [...ended(reply.messages, 'correlationId'), ...ended(deadLetters, 'messageId')].sort(),
    ).toEqual(cases.map(([name]) => name).sort());
    expect(ended(reply.messages, 'correlationId')).toEqual(
      expect.arrayContaining(['exotic extras', 'plain', 'tenant as bytes']),
    );
    const refused = new Map(
      deadLetters.map((m) => [m.properties.messageId, m.properties.headers?.[HEADERS.reason]]),
    );
    expect(refused.get('tenant as a table')).toBe('invalid-envelope');
    expect(refused.get('attempt as a float')).toBe('invalid-envelope');
    expect(worker.consumers[0]!.consumer.state).toBe('consuming');
    expect((await probe.messageCount(`${prefix}.jobs.echo`)).messageCount).toBe(0);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
