import { fileURLToPath } from 'node:url';
import { type Delivery, HEADERS, JobPublisher, type Transport, topologyFor } from '@warren/core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, Worker, type WorkerHealth } from '../src/index.ts';
import { embedded, rabbitmq, replies, type TestBroker } from './brokers.ts';
import { crashFirstCalls } from './fixtures/crash-first.ts';
import { BrokerProbe, uniquePrefix, waitFor } from './support.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const MODEL_GONE = fileURLToPath(new URL('./fixtures/model-gone.ts', import.meta.url));
const CRASH_FIRST = fileURLToPath(new URL('./fixtures/crash-first.ts', import.meta.url));

/** The worker's log lines, parsed. */
function capture(lines: Array<Record<string, unknown>>) {
  return pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
}

async function probeHealth(worker: Worker, path: '/livez' | '/readyz') {
  const { port } = worker.healthAddress!;
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: (await response.json()) as WorkerHealth };
}

describe.each([
  ['rabbitmq', rabbitmq],
  ['the embedded broker', embedded],
])('supervision on %s', (_, open) => {
  let broker: TestBroker;
  const cleanUp: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    broker = await open();
  });
  afterEach(async () => {
    for (const step of cleanUp.splice(0).reverse()) await step();
  });
  afterAll(async () => {
    await broker?.close();
  });

  async function producerFor(prefix: string, modelTypes: string[]) {
    const producer = broker.transport();
    await producer.connect();
    for (const modelType of modelTypes) await producer.declare(topologyFor(modelType, { prefix }));
    cleanUp.push(async () => {
      for (const modelType of modelTypes) await broker.deleteTopology(prefix, modelType);
    });
    return { producer, publisher: new JobPublisher(producer, { prefix }) };
  }

  it('restarts a crashing consumer with growing delays, escalates after its budget, and its sibling serves throughout', async () => {
    const prefix = uniquePrefix();
    const { producer, publisher } = await producerFor(prefix, ['model-gone', 'echo']);
    const reply = await replies(producer);
    const lines: Array<Record<string, unknown>> = [];
    const config = parseConfig(
      {
        topology: { prefix },
        handlers: [
          { module: MODEL_GONE, prefetch: 1 },
          { module: ECHO, prefetch: 4 },
        ],
        supervisor: {
          backoff: { initialDelayMs: 200, multiplier: 2, maxDelayMs: 400 },
          budget: { maxRestarts: 3, withinMs: 60_000 },
        },
        health: { port: 0, host: '127.0.0.1' },
      },
      process.cwd(),
    );
    const worker = await Worker.start({
      config,
      logger: capture(lines),
      transport: broker.transport(),
      env: {},
    });
    cleanUp.push(async () => void (await worker.stop()));
    expect((await probeHealth(worker, '/readyz')).status).toBe(200);

    const doomed = await publisher.publish({
      modelType: 'model-gone',
      tenant: 'acme',
      input: { text: 'never answered' },
      replyTo: reply.queue,
    });
    const crashes = () => lines.filter((line) => line.msg === 'actor crashed; restarting it');
    await waitFor(() => crashes().length === 1, 'the first crash');
    const restarting = await probeHealth(worker, '/readyz');
    expect(restarting.status).toBe(503);
    expect(restarting.body.consumers.find((c) => c.id === 'model-gone')).toMatchObject({
      state: 'restarting',
      restarts: 1,
      lastError: 'the model folder went away',
    });
    // Within the liveness grace, a restart is not a dead worker; past it, it is.
    expect((await probeHealth(worker, '/livez')).status).toBe(200);
    expect(worker.health(Date.now() + 121_000).live).toBe(false);

    // The sibling answers while its neighbour crashes and restarts.
    const echoed: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const text = `echo ${index}`;
      await publisher.publish({
        modelType: 'echo',
        tenant: 'acme',
        input: { text },
        replyTo: reply.queue,
      });
      echoed.push(text);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const exit = await worker.exited;
    expect(exit.ok).toBe(false);
    expect((exit.error as Error).message).toBe('the model folder went away');
    expect(crashes().map((line) => line.restartInMs)).toEqual([200, 400, 400]);
    expect(lines.some((line) => line.msg === 'restart budget spent; escalating')).toBe(true);
    // The final counts add up every consumer the handler had, not just the last.
    const countsOf = (handler: string) => exit.consumers.find((c) => c.handler === handler)!.counts;
    expect(countsOf('model-gone')).toMatchObject({ received: 4, requeued: 4 });
    expect(countsOf('echo')).toMatchObject({ received: 5, succeeded: 5 });

    const bodies = (results: Delivery[]) => results.map((r) => JSON.parse(r.body.toString()));
    expect(bodies(reply.results)).toEqual(echoed.map((text) => ({ echo: text })));
    expect(reply.results.some((r) => r.properties.correlationId === doomed.messageId)).toBe(false);
    // Crashing is not the job's fault: it waits in its queue, neither answered nor dead-lettered.
    expect(await broker.messageCount(`${prefix}.jobs.model-gone`)).toBe(1);
    expect(await broker.messageCount(`${prefix}.dead-letter.model-gone`)).toBe(0);
  });

  it('never starts the handler of a job that was waiting for a slot when its consumer crashed', async () => {
    const prefix = uniquePrefix();
    const { producer, publisher } = await producerFor(prefix, ['crash-first']);
    const reply = await replies(producer);
    const config = parseConfig(
      {
        topology: { prefix },
        handlers: [{ module: CRASH_FIRST, prefetch: 4, concurrency: 1 }],
        supervisor: {
          backoff: { initialDelayMs: 50, multiplier: 1, maxDelayMs: 50 },
          budget: { maxRestarts: 20 },
        },
      },
      process.cwd(),
    );
    const keys = ['crash', 'a', 'b', 'c'].map((name) => `${name}-${prefix}`);
    const worker = await Worker.start({
      config,
      logger: pino({ level: 'silent' }),
      transport: broker.transport(),
      env: {},
    });
    cleanUp.push(async () => void (await worker.stop()));
    for (const [index, key] of keys.entries()) {
      await publisher.publish({
        modelType: 'crash-first',
        tenant: 'acme',
        input: { key, crash: index === 0 },
        replyTo: reply.queue,
      });
    }

    await waitFor(() => reply.results.length === 3, 'the three good jobs');
    const calls = crashFirstCalls().filter((key) => keys.includes(key));
    // Each good job ran once: none was started by the consumer that crashed while it waited.
    for (const key of keys.slice(1)) expect(calls.filter((call) => call === key)).toHaveLength(1);
    const answered = reply.results.map((r) => JSON.parse(r.body.toString()).key).sort();
    expect(answered).toEqual(keys.slice(1).sort());
  });

  it('restarts a consumer whose start fails, and takes no job before its setup succeeds', async () => {
    const prefix = uniquePrefix();
    const { producer, publisher } = await producerFor(prefix, ['echo']);
    const reply = await replies(producer);
    const config = parseConfig(
      {
        topology: { prefix },
        handlers: [{ module: ECHO, prefetch: 2 }],
        supervisor: { backoff: { initialDelayMs: 50 }, budget: { maxRestarts: 5 } },
      },
      process.cwd(),
    );
    await publisher.publish({
      modelType: 'echo',
      tenant: 'acme',
      input: { text: 'waited' },
      replyTo: reply.queue,
    });
    // The first two starts fail to connect; the third works.
    const transport = flakyConnect(broker.transport(), 2);
    const worker = await Worker.start({
      config,
      logger: pino({ level: 'silent' }),
      transport,
      env: {},
    });
    cleanUp.push(async () => void (await worker.stop()));

    await waitFor(() => reply.results.length === 1, 'the result');
    expect(JSON.parse(reply.results[0]!.body.toString())).toEqual({ echo: 'waited' });
    expect(reply.results[0]!.properties.headers?.[HEADERS.attempt]).toBe(1);
    expect(worker.health().consumers[0]).toMatchObject({ state: 'running', restarts: 2 });
    // Serving, it stays live however long it runs.
    expect(worker.health(Date.now() + 3_600_000)).toMatchObject({ live: true, ready: true });
  });
});

/** A transport whose first `failures` connects fail, as a broker still starting would. */
function flakyConnect(transport: Transport, failures: number): Transport {
  let left = failures;
  return new Proxy(transport, {
    get(target, property) {
      if (property === 'connect') {
        return async () => {
          if (left > 0) {
            left -= 1;
            throw new Error('connection refused (test)');
          }
          return target.connect();
        };
      }
      // Getters run on the transport itself: its private fields are not the proxy's.
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('supervision on rabbitmq, broker-side', () => {
  let probe: BrokerProbe;
  beforeAll(async () => {
    probe = await BrokerProbe.open();
  });
  afterAll(async () => {
    await probe?.close();
  });

  it('brings a consumer back after its queue is deleted under it', async () => {
    const broker = await rabbitmq();
    const prefix = uniquePrefix();
    const producer = broker.transport();
    await producer.connect();
    const reply = await replies(producer);
    const config = parseConfig(
      {
        topology: { prefix },
        handlers: [{ module: ECHO, prefetch: 2 }],
        supervisor: { backoff: { initialDelayMs: 50 } },
      },
      process.cwd(),
    );
    const lines: Array<Record<string, unknown>> = [];
    const worker = await Worker.start({
      config,
      logger: capture(lines),
      transport: broker.transport(),
      env: {},
    });
    try {
      await probe.channel.deleteQueue(`${prefix}.jobs.echo`);
      await waitFor(
        () => lines.some((line) => line.msg === 'actor crashed; restarting it'),
        'the consumer to notice',
      );
      await waitFor(() => worker.health().ready, 'the consumer to be back');

      const publisher = new JobPublisher(producer, { prefix });
      await publisher.publish({
        modelType: 'echo',
        tenant: 'acme',
        input: { text: 'after' },
        replyTo: reply.queue,
      });
      await waitFor(() => reply.results.length === 1, 'the result');
      expect(JSON.parse(reply.results[0]!.body.toString())).toEqual({ echo: 'after' });
      expect(worker.health().consumers[0]!.restarts).toBe(1);
    } finally {
      await worker.stop();
      await broker.deleteTopology(prefix, 'echo');
      await broker.close();
    }
  });
});
