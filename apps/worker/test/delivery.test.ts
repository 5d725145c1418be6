import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_RETRY_POLICY,
  type DedupeStore,
  type Delivery,
  encodeJob,
  HEADERS,
  JobPublisher,
  type JobSpec,
  MemoryDedupeStore,
  type RetryPolicy,
  type Transport,
  topologyFor,
} from '@warren/core';
import { RedisDedupeStore } from '@warren/redis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, Worker, type WorkerConfig } from '../src/index.ts';
import {
  collect,
  deadLetterQueue,
  embedded,
  rabbitmq,
  replies,
  type TestBroker,
  withoutAcks,
} from './brokers.ts';
import { batchSizes } from './fixtures/batcher.ts';
import { labCalls } from './fixtures/lab.ts';
import { sideEffects } from './fixtures/side-effect.ts';
import { uniquePrefix, waitFor } from './support.ts';

const LAB = fileURLToPath(new URL('./fixtures/lab.ts', import.meta.url));
const BATCHER = fileURLToPath(new URL('./fixtures/batcher.ts', import.meta.url));
const SIDE_EFFECT = fileURLToPath(new URL('./fixtures/side-effect.ts', import.meta.url));

/** A pino logger whose lines land, parsed, in `lines`. */
function capture(lines: Array<Record<string, unknown>>) {
  return pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
}

interface Lab {
  prefix: string;
  modelType: string;
  config: WorkerConfig;
  worker: Worker;
  producer: Transport;
  retry: RetryPolicy;
  publish(input: Record<string, unknown>, spec?: Partial<JobSpec>): Promise<string>;
  results: Delivery[];
  deadLetters: Delivery[];
}

describe.each([
  ['rabbitmq', rabbitmq],
  ['the embedded broker', embedded],
])('delivery semantics on %s', (_, open) => {
  let broker: TestBroker;
  const labs: Lab[] = [];

  beforeAll(async () => {
    broker = await open();
  });
  afterEach(async () => {
    for (const lab of labs.splice(0)) {
      await lab.worker.stop();
      await broker.deleteTopology(lab.prefix, lab.modelType, { retry: lab.retry });
    }
  });
  afterAll(async () => {
    await broker?.close();
  });

  interface LabOptions {
    retry?: Partial<RetryPolicy>;
    topology?: Record<string, unknown>;
    prefetch?: number;
    /** Runs after the topology exists and before the worker starts. */
    before?: (lab: Lab) => Promise<void>;
    transport?: Transport;
    dedupeStore?: DedupeStore;
    /** Receives the worker's log lines, parsed. */
    logs?: Array<Record<string, unknown>>;
    deadlines?: Record<string, unknown>;
    concurrency?: number;
    drainTimeoutMs?: number;
    /** Another plugin than the lab handler, and its model type. */
    plugin?: { module: string; modelType: string };
    adaptivePrefetch?: { min: number; max: number };
    /** The broker's consumer timeout, as the worker config states it. */
    consumerTimeoutMs?: number;
  }

  async function startLab(options: LabOptions = {}): Promise<Lab> {
    const prefix = uniquePrefix();
    const { module, modelType } = options.plugin ?? { module: LAB, modelType: 'lab' };
    const retry = { ...DEFAULT_RETRY_POLICY, jitter: 0, initialDelayMs: 50, ...options.retry };
    const config = parseConfig(
      {
        topology: { prefix, ...options.topology },
        ...(options.consumerTimeoutMs === undefined
          ? {}
          : {
              broker: {
                url: 'amqp://127.0.0.1:5672',
                consumerTimeoutMs: options.consumerTimeoutMs,
              },
            }),
        handlers: [
          {
            module,
            prefetch: options.prefetch ?? 4,
            concurrency: options.concurrency ?? 1,
            retry,
            ...(options.adaptivePrefetch ? { adaptivePrefetch: options.adaptivePrefetch } : {}),
          },
        ],
        shutdown: { drainTimeoutMs: options.drainTimeoutMs ?? 30_000 },
        deadlines: { skewMs: 0, ...options.deadlines },
      },
      process.cwd(),
    );
    const producer = broker.transport();
    await producer.connect();
    await producer.declare(topologyFor(modelType, { ...config.topology, retry }));
    const reply = await replies(producer);
    const publisher = new JobPublisher(producer, { prefix });
    const lab: Lab = {
      prefix,
      modelType,
      config,
      worker: undefined as unknown as Worker,
      producer,
      retry,
      results: reply.results,
      deadLetters: await collect(producer, deadLetterQueue(prefix, modelType)),
      publish: async (input, spec = {}) => {
        const job = { modelType, tenant: 'acme', input, replyTo: reply.queue, ...spec };
        return (await publisher.publish(job)).messageId;
      },
    };
    labs.push(lab);
    await options.before?.(lab);
    lab.worker = await Worker.start({
      config,
      logger: options.logs ? capture(options.logs) : pino({ level: 'silent' }),
      transport: options.transport ?? broker.transport(),
      ...(options.dedupeStore ? { dedupeStore: options.dedupeStore } : {}),
      env: {},
    });
    return lab;
  }

  const counts = (lab: Lab) => lab.worker.consumers[0]!.consumer.counts;
  const callsFor = (key: string) => labCalls().filter((call) => call.key === key);

  it('retries a handler that fails twice, then gives exactly one result after 3 attempts with growing delays', async () => {
    const lab = await startLab({ retry: { maxAttempts: 5, initialDelayMs: 100, multiplier: 3 } });
    const key = `flaky-${lab.prefix}`;

    await lab.publish({ key, failUntilAttempt: 2 });
    await waitFor(() => lab.results.length === 1, 'the result');
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect(lab.results).toHaveLength(1);
    expect(JSON.parse(lab.results[0]!.body.toString())).toEqual({ key, attempt: 3 });
    expect(lab.results[0]!.properties.headers?.[HEADERS.attempt]).toBe(3);
    const times = callsFor(key).map((call) => call.at);
    expect(times).toHaveLength(3);
    const [first, second] = [times[1]! - times[0]!, times[2]! - times[1]!];
    expect(first).toBeGreaterThanOrEqual(100);
    expect(second).toBeGreaterThan(first);
    expect(counts(lab)).toMatchObject({ retried: 2, succeeded: 1, deadLettered: 0 });
  });

  it('publishes results of a reply-to-only handler to the jobs that name a reply queue, and to no others', async () => {
    const lab = await startLab({ plugin: { module: SIDE_EFFECT, modelType: 'side-effect' } });
    const keys = ['a', 'b', 'c'].map((name) => `${name}-${lab.prefix}`);

    // No queue is bound to the results exchange: with results 'always', the first two would be
    // dead-lettered as unroutable.
    await lab.publish({ key: keys[0] }, { replyTo: undefined });
    await lab.publish({ key: keys[1] }, { replyTo: undefined });
    const asked = await lab.publish({ key: keys[2] });
    await waitFor(() => counts(lab).succeeded === 3, 'the three jobs to succeed');

    expect(sideEffects().filter((key) => keys.includes(key))).toEqual(keys);
    expect(lab.results.map((result) => result.properties.correlationId)).toEqual([asked]);
    expect(JSON.parse(lab.results[0]!.body.toString())).toEqual({ written: keys[2] });
    expect(lab.deadLetters).toHaveLength(0);
    expect(counts(lab)).toMatchObject({ received: 3, succeeded: 3, deadLettered: 0 });

    // A job answered with no result is still done in the dedupe store: published again under
    // the same id, it is acked without running.
    const once = `once-${lab.prefix}`;
    await lab.publish({ key: once }, { replyTo: undefined, messageId: once });
    await waitFor(() => counts(lab).succeeded === 4, 'the fourth job to succeed');
    await lab.publish({ key: once }, { replyTo: undefined, messageId: once });
    await waitFor(() => counts(lab).duplicates === 1, 'the duplicate to be acked');
    expect(sideEffects().filter((key) => key === once)).toHaveLength(1);
  });

  it('dead-letters a handler that always throws after its last attempt, with attempts and failure times', async () => {
    const lab = await startLab({ retry: { maxAttempts: 3, initialDelayMs: 30 } });
    const key = `broken-${lab.prefix}`;

    const messageId = await lab.publish({ key, failUntilAttempt: 1_000 });
    await waitFor(() => lab.deadLetters.length === 1, 'the dead letter');

    const headers = lab.deadLetters[0]!.properties.headers!;
    expect(lab.deadLetters[0]!.properties.messageId).toBe(messageId);
    expect(headers).toMatchObject({
      [HEADERS.errorCode]: 'WARREN_HANDLER_FAILED',
      [HEADERS.reason]: 'handler-failed',
      [HEADERS.errorMessage]: 'lab failure on attempt 3',
      [HEADERS.attempts]: 3,
      [HEADERS.handler]: 'lab',
    });
    expect(headers[HEADERS.firstFailedAt] as number).toBeLessThan(
      headers[HEADERS.failedAt] as number,
    );
    expect(callsFor(key)).toHaveLength(3);
    expect(lab.results).toHaveLength(0);
    await waitFor(() => counts(lab).deadLettered === 1, 'the dead letter to be counted');
    expect(counts(lab)).toMatchObject({ retried: 2, deadLettered: 1 });
    expect(lab.worker.consumers[0]!.consumer.state).toBe('consuming');
    expect(await broker.messageCount(`${lab.prefix}.jobs.lab`)).toBe(0);
  });

  it('keeps headers bounded through 1,000 retry cycles of one job', async () => {
    const retry = { maxAttempts: 1_000, initialDelayMs: 1, maxDelayMs: 1, multiplier: 1 };
    const lab = await startLab({ retry });
    const key = `cycling-${lab.prefix}`;

    await lab.publish({ key, failUntilAttempt: 1_000_000 });
    await waitFor(() => lab.deadLetters.length === 1, 'the dead letter', 120_000);

    const headers = lab.deadLetters[0]!.properties.headers!;
    expect(headers[HEADERS.attempts]).toBe(1_000);
    expect(callsFor(key)).toHaveLength(1_000);
    expect(Buffer.byteLength(JSON.stringify(headers))).toBeLessThan(800);
  }, 180_000);

  it('refuses a job whose deadline outlasts the consumer timeout, and stops one that runs too long without a deadline', async () => {
    // 2 s, less the tenth kept back: 1.8 s for a delivery to be settled.
    const lab = await startLab({ consumerTimeoutMs: 2_000, concurrency: 3 });
    const [far, endless, near] = ['far', 'endless', 'near'].map((name) => `${name}-${lab.prefix}`);

    const farId = await lab.publish({ key: far! }, { deadline: Date.now() + 10_000 });
    await lab.publish({ key: endless!, sleepMs: 30_000 });
    await lab.publish({ key: near!, sleepMs: 50 }, { deadline: Date.now() + 1_500 });
    await waitFor(
      () => lab.deadLetters.length === 2 && lab.results.length === 1,
      'the outcomes',
      10_000,
    );

    const byKey = (key: string) =>
      lab.deadLetters.find((d) => JSON.parse(d.body.toString()).key === key)!.properties.headers!;
    expect(lab.deadLetters[0]!.properties.messageId).toBe(farId);
    expect(byKey(far!)).toMatchObject({
      [HEADERS.errorCode]: 'WARREN_CONSUMER_TIMEOUT',
      [HEADERS.reason]: 'consumer-timeout',
    });
    expect(String(byKey(far!)[HEADERS.errorMessage])).toContain('beyond the 2000 ms');
    expect(callsFor(far!)).toHaveLength(0);
    expect(byKey(endless!)).toMatchObject({ [HEADERS.errorCode]: 'WARREN_CONSUMER_TIMEOUT' });
    expect(String(byKey(endless!)[HEADERS.errorMessage])).toContain('stopped before the broker');
    expect(callsFor(endless!)).toHaveLength(1);
    expect(JSON.parse(lab.results[0]!.body.toString())).toEqual({ key: near, attempt: 1 });
  });

  it('aborts a slow handler at a deadline 100 ms away, dead-letters it as expired and counts it', async () => {
    const lab = await startLab();
    const key = `slow-${lab.prefix}`;

    await lab.publish({ key, sleepMs: 5_000 }, { deadline: Date.now() + 100 });
    await waitFor(() => lab.deadLetters.length === 1, 'the dead letter');

    expect(lab.deadLetters[0]!.properties.headers).toMatchObject({
      [HEADERS.reason]: 'expired',
      [HEADERS.errorCode]: 'WARREN_DEADLINE_EXCEEDED',
    });
    expect(lab.deadLetters[0]!.properties.expiration).toBeUndefined();
    await waitFor(() => counts(lab).deadLettered === 1, 'the dead letter to be counted');
    expect(counts(lab)).toMatchObject({ expired: 1, deadLettered: 1, retried: 0 });
  });

  it('drops a job found expired when the policy says drop, and counts it', async () => {
    const lab = await startLab({ deadlines: { onExpired: 'drop' } });
    const key = `late-${lab.prefix}`;

    // Published raw: JobPublisher would give it a 1 ms expiration, and the broker might drop it first.
    const { body, properties } = encodeJob({ modelType: 'lab', tenant: 'acme', input: { key } });
    properties.headers![HEADERS.deadline] = Date.now() - 1_000;
    await lab.producer.publish(
      { exchange: `${lab.prefix}.jobs`, routingKey: 'lab.public' },
      body,
      properties,
    );
    await waitFor(() => counts(lab).dropped === 1, 'the drop');

    expect(counts(lab)).toMatchObject({ expired: 1, dropped: 1, deadLettered: 0 });
    expect(callsFor(key)).toHaveLength(0);
    expect(lab.deadLetters).toHaveLength(0);
    expect(await broker.messageCount(`${lab.prefix}.jobs.lab`)).toBe(0);
  });

  it('abandons a handler that ignores its signal at the deadline, and goes on with the next job', async () => {
    const lab = await startLab();
    const stuck = `stuck-${lab.prefix}`;
    const next = `next-${lab.prefix}`;

    await lab.publish(
      { key: stuck, sleepMs: 60_000, ignoreSignal: true },
      { deadline: Date.now() + 150 },
    );
    await lab.publish({ key: next });
    await waitFor(
      () => lab.deadLetters.length === 1 && lab.results.length === 1,
      'both jobs to end',
    );

    expect(lab.deadLetters[0]!.properties.headers?.[HEADERS.reason]).toBe('expired');
    expect(JSON.parse(lab.results[0]!.body.toString())).toMatchObject({ key: next });
  });

  it('runs the handler once for a message id published twice', async () => {
    const lab = await startLab();
    const key = `twice-${lab.prefix}`;

    await lab.publish({ key }, { messageId: `same-${lab.prefix}` });
    await waitFor(() => lab.results.length === 1, 'the first result');
    await lab.publish({ key }, { messageId: `same-${lab.prefix}` });
    await waitFor(() => counts(lab).duplicates === 1, 'the duplicate to be acked');

    expect(callsFor(key)).toHaveLength(1);
    expect(lab.results).toHaveLength(1);
  });

  it.each([
    ['in memory', () => new MemoryDedupeStore()],
    ['in Redis', () => new RedisDedupeStore({ keyPrefix: `warren-test:${uniquePrefix()}:` })],
  ])(
    'acks a redelivered job whose result was already published (store %s), without running the handler',
    async (_, makeStore) => {
      const store: DedupeStore = makeStore();
      // The first worker's acks never reach the broker: as if it died right after publishing.
      const lab = await startLab({
        dedupeStore: store,
        transport: withoutAcks(broker.transport()),
      });
      const key = `redelivered-${lab.prefix}`;
      await lab.publish({ key });
      await waitFor(() => lab.results.length === 1, 'the result');
      await lab.worker.stop();

      const second = await Worker.start({
        config: lab.config,
        logger: pino({ level: 'silent' }),
        transport: broker.transport(),
        dedupeStore: store,
        env: {},
      });
      lab.worker = second;
      await waitFor(() => second.consumers[0]!.consumer.counts.duplicates === 1, 'the duplicate');

      expect(callsFor(key)).toHaveLength(1);
      expect(lab.results).toHaveLength(1);
      expect(await broker.messageCount(`${lab.prefix}.jobs.lab`)).toBe(0);
      await store.close();
    },
  );

  it('retries a job while the dedupe store is out of reach, never running it, then dead-letters it', async () => {
    const unreachable: DedupeStore = {
      claim: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6390')),
      complete: () => Promise.resolve(),
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const lab = await startLab({
      dedupeStore: unreachable,
      retry: { maxAttempts: 3, initialDelayMs: 30 },
    });
    const key = `storeless-${lab.prefix}`;

    const messageId = await lab.publish({ key });
    await waitFor(() => lab.deadLetters.length === 1, 'the dead letter');

    expect(lab.deadLetters[0]!.properties.messageId).toBe(messageId);
    expect(lab.deadLetters[0]!.properties.headers).toMatchObject({
      [HEADERS.errorCode]: 'WARREN_DEDUPE_UNAVAILABLE',
      [HEADERS.reason]: 'dedupe-unavailable',
      [HEADERS.errorMessage]: 'dedupe store unavailable: connect ECONNREFUSED 127.0.0.1:6390',
      [HEADERS.attempts]: 3,
    });
    expect(callsFor(key)).toHaveLength(0);
    expect(lab.results).toHaveLength(0);
    await waitFor(() => counts(lab).deadLettered === 1, 'the dead letter to be counted');
    expect(counts(lab)).toMatchObject({ retried: 2, deadLettered: 1, deferred: 0 });
    expect(await broker.messageCount(`${lab.prefix}.jobs.lab`)).toBe(0);
  });

  it('is not ready while its dedupe store is out of reach, and ready again once a call gets through', async () => {
    let down = true;
    const flaky: DedupeStore = {
      claim: () =>
        down
          ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6390'))
          : Promise.resolve('claimed'),
      complete: () => Promise.resolve(),
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const lab = await startLab({
      dedupeStore: flaky,
      retry: { maxAttempts: 5, initialDelayMs: 300, multiplier: 1 },
    });
    await waitFor(() => lab.worker.health().ready, 'the worker to be ready');
    expect(lab.worker.health().dedupeStore).toBe('reachable');

    const messageId = await lab.publish({ key: `flaky-${lab.prefix}` });
    await waitFor(() => counts(lab).retried === 1, 'the first retry');
    expect(lab.worker.health()).toMatchObject({ ready: false, dedupeStore: 'unreachable' });
    expect(lab.worker.health().live, 'live: a restart would not bring the store back').toBe(true);

    down = false;
    await waitFor(() => lab.results.length === 1, 'the result once the store answers');
    expect(lab.results[0]!.properties.correlationId).toBe(messageId);
    expect(lab.worker.health()).toMatchObject({ ready: true, dedupeStore: 'reachable' });
  });

  it('dead-letters each malformed body once, logs it once, and never requeues it', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const lab = await startLab({ logs });
    const target = { exchange: `${lab.prefix}.jobs`, routingKey: 'lab.public' };
    const headers = { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'lab' };
    const bodies: Array<[string, Buffer, string]> = [
      ['not-json', Buffer.from('{"a":"b}'), 'application/json'],
      ['empty-body', Buffer.alloc(0), 'application/json'],
      ['unsupported-content-type', Buffer.from('{"key":"x"}'), 'text/plain'],
      ['not-utf8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'application/json'],
    ];
    for (const [reason, body, contentType] of bodies) {
      await lab.producer.publish(target, body, { messageId: reason, contentType, headers });
    }
    await waitFor(() => lab.deadLetters.length === bodies.length, 'the dead letters');
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect(lab.deadLetters.map((d) => d.properties.messageId).sort()).toEqual(
      bodies.map(([r]) => r).sort(),
    );
    for (const letter of lab.deadLetters) {
      expect(letter.properties.headers?.[HEADERS.reason]).toBe(letter.properties.messageId);
    }
    const logged = logs.filter((line) => line.msg === 'job dead-lettered');
    expect(logged.map((line) => line.messageId).sort()).toEqual(bodies.map(([r]) => r).sort());
    // Each line names the reason as well as the code (here each job's id is its reason).
    for (const line of logged) expect(line.reason).toBe(line.messageId);
    expect(counts(lab)).toMatchObject({ received: 4, deadLettered: 4, retried: 0, requeued: 0 });
    expect(await broker.messageCount(`${lab.prefix}.jobs.lab`)).toBe(0);
  });

  it('sends a job interrupted by shutdown back without counting it toward the delivery limit', async () => {
    const key = `interrupted-${uniquePrefix()}`;
    const lab = await startLab({ topology: { deliveryLimit: 1 }, drainTimeoutMs: 50 });
    await lab.publish({ key, sleepMs: 400 });

    // Three graceful restarts, each cutting the job short; a nack-requeue would have counted.
    for (let restart = 1; restart <= 3; restart += 1) {
      await waitFor(() => callsFor(key).length === restart, `run ${restart} to start`);
      await lab.worker.stop();
      lab.worker = await Worker.start({
        config: lab.config,
        logger: pino({ level: 'silent' }),
        transport: broker.transport(),
        env: {},
      });
    }
    await waitFor(() => lab.results.length === 1, 'the result');

    expect(lab.deadLetters).toHaveLength(0);
    expect(callsFor(key).map((call) => call.attempt)).toEqual([1, 1, 1, 1]);
  });

  it('raises prefetch for a backlog of fresh jobs, so fast jobs pass a slow one', async () => {
    const key = `backlog-speed-${uniquePrefix()}`;
    const lab = await startLab({
      prefetch: 8,
      concurrency: 2,
      before: async (lab) => {
        await lab.publish({ key: `${key}-slow`, sleepMs: 800 });
        for (let i = 0; i < 4; i += 1) await lab.publish({ key: `${key}-fast` });
      },
    });
    await waitFor(() => lab.results.length === 5, 'all results');

    const order = lab.results.map((d) => (JSON.parse(d.body.toString()) as { key: string }).key);
    expect(order.at(-1)).toBe(`${key}-slow`);
  });

  it('batches jobs into one call, gives each job its own result, and fails only the bad ones', async () => {
    const lab = await startLab({
      plugin: { module: BATCHER, modelType: 'batcher' },
      prefetch: 16,
      retry: { maxAttempts: 1 },
      before: async (lab) => {
        for (let n = 0; n < 20; n += 1)
          await lab.publish({ n, fail: n === 5 }, { messageId: `n-${lab.prefix}-${n}` });
        await lab.publish({ n: 'not a number' }, { messageId: `bad-${lab.prefix}` });
      },
    });
    await waitFor(
      () => lab.results.length === 19 && lab.deadLetters.length === 2,
      'every job to end',
    );

    for (const result of lab.results) {
      const body = JSON.parse(result.body.toString()) as {
        n: number;
        doubled: number;
        messageId: string;
      };
      expect(result.properties.correlationId).toBe(`n-${lab.prefix}-${body.n}`);
      expect(body.messageId).toBe(result.properties.correlationId);
      expect(body.doubled).toBe(body.n * 2);
    }
    const reasons = Object.fromEntries(
      lab.deadLetters.map((d) => [d.properties.messageId, d.properties.headers?.[HEADERS.reason]]),
    );
    expect(reasons).toEqual({
      [`n-${lab.prefix}-5`]: 'handler-failed',
      [`bad-${lab.prefix}`]: 'schema-violation',
    });
    expect(Math.max(...batchSizes())).toBeGreaterThan(1);
  });

  it('lets a batch keep growing past its wait while the handler is busy, then starts it whole', async () => {
    const lab = await startLab({
      plugin: { module: BATCHER, modelType: 'batcher' },
      prefetch: 16,
      concurrency: 1,
    });
    const before = batchSizes().length;
    await lab.publish({ n: 0, sleepMs: 1_000 });
    await waitFor(() => batchSizes().length === before + 1, 'the slow batch to start');
    // Two groups of jobs, each waiting longer than the batch's 30 ms, while the handler is busy.
    for (let n = 1; n <= 3; n += 1) await lab.publish({ n });
    await sleep(100);
    for (let n = 4; n <= 6; n += 1) await lab.publish({ n });
    await waitFor(() => lab.results.length === 7, 'all seven results');

    // Not [1, 3, 3]: the first group did not start alone just to wait behind the slow batch.
    expect(batchSizes().slice(before)).toEqual([1, 6]);
    const doubled = lab.results.map(
      (d) => JSON.parse(d.body.toString()) as { n: number; doubled: number },
    );
    expect(doubled.every(({ n, doubled }) => doubled === n * 2)).toBe(true);
  });

  it("counts the time a batch waits for the handler toward the broker's consumer timeout", async () => {
    const lab = await startLab({
      plugin: { module: BATCHER, modelType: 'batcher' },
      prefetch: 16,
      concurrency: 1,
      consumerTimeoutMs: 2_000,
    });
    const before = batchSizes().length;
    await lab.publish({ n: 0, sleepMs: 1_500 }, { messageId: `first-${lab.prefix}` });
    await waitFor(() => batchSizes().length === before + 1, 'the first batch to start');
    // Waits about 1.5 s for the handler, then would run 1.5 s: past the 1.8 s it may be held.
    await lab.publish({ n: 1, sleepMs: 1_500 }, { messageId: `second-${lab.prefix}` });
    await waitFor(
      () => lab.results.length + lab.deadLetters.length === 2,
      'both jobs to end',
      10_000,
    );

    expect(lab.results.map((r) => r.properties.correlationId)).toEqual([`first-${lab.prefix}`]);
    expect(lab.deadLetters.map((d) => d.properties.messageId)).toEqual([`second-${lab.prefix}`]);
    expect(lab.deadLetters[0]!.properties.headers).toMatchObject({
      [HEADERS.errorCode]: 'WARREN_CONSUMER_TIMEOUT',
    });
  });

  it('raises its prefetch while batches come full, within its bounds, and shows each decision', async () => {
    const lab = await startLab({
      plugin: { module: BATCHER, modelType: 'batcher' },
      prefetch: 8,
      adaptivePrefetch: { min: 8, max: 24 },
      before: async (lab) => {
        for (let n = 0; n < 400; n += 1) await lab.publish({ n, sleepMs: 40 });
      },
    });
    const consumer = lab.worker.consumers[0]!.consumer;
    // Decisions are a second apart; the backlog keeps batches full meanwhile.
    await waitFor(() => consumer.prefetch === 24, 'prefetch to reach its maximum', 10_000);

    expect(consumer.prefetchDecisions.map((d) => [d.from, d.to, d.reason])).toEqual([
      [8, 16, 'batches-full'],
      [16, 24, 'batches-full'],
    ]);
  });

  it('handles jobs that were queued before the worker started', async () => {
    const key = `backlog-${uniquePrefix()}`;
    const lab = await startLab({
      prefetch: 8,
      before: async (lab) => {
        for (let i = 0; i < 20; i += 1) await lab.publish({ key });
      },
    });
    await waitFor(() => lab.results.length === 20, 'all 20 results');
    // A result can arrive before its job's ack is counted.
    await waitFor(() => counts(lab).succeeded === 20, 'all 20 acks');

    expect(counts(lab)).toMatchObject({ received: 20, succeeded: 20 });
    expect(callsFor(key)).toHaveLength(20);
  });

  it('lets a high-priority job overtake queued low-priority ones', async () => {
    const key = `priority-${uniquePrefix()}`;
    const lab = await startLab({
      topology: { queueType: 'classic', maxPriority: 9 },
      prefetch: 1,
      before: async (lab) => {
        for (let i = 0; i < 50; i += 1) await lab.publish({ key: `${key}-low`, sleepMs: 5 });
      },
    });
    // The worker is busy with the backlog when the urgent job arrives.
    await waitFor(() => callsFor(`${key}-low`).length >= 3, 'the first low-priority jobs');
    await lab.publish({ key: `${key}-high` }, { priority: 9 });
    await waitFor(() => lab.results.length === 51, 'all results', 30_000);

    const order = labCalls()
      .filter((call) => call.key.startsWith(key))
      .map((call) => call.key);
    expect(order.indexOf(`${key}-high`)).toBeGreaterThanOrEqual(3);
    expect(order.indexOf(`${key}-high`)).toBeLessThan(10);
  });
});
