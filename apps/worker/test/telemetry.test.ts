import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { metrics } from '@opentelemetry/api';
import { DEFAULT_RETRY_POLICY, JobPublisher, type Transport, topologyFor } from '@warren/core';
import { startTelemetry, type Telemetry } from '@warren/telemetry';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { OtlpReceiver } from '../../../packages/telemetry/test/otlp-receiver.ts';
import { clearOtelEnv } from '../../../packages/telemetry/test/support.ts';
import { parseConfig, Worker, type WorkerHealth } from '../src/index.ts';
import { createWorkerLogger } from '../src/logging.ts';
import { rabbitmq, replies, type TestBroker } from './brokers.ts';
import { setupGate } from './fixtures/gated-setup.ts';
import { uniquePrefix, waitFor } from './support.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const GATED = fileURLToPath(new URL('./fixtures/gated-setup.ts', import.meta.url));

/** A port nothing listens on now, on loopback (for a server that starts later). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The value of the one sample of `name` whose labels include `label`, from Prometheus text. */
function sample(text: string, name: string, label = ''): number | undefined {
  const line = text
    .split('\n')
    .find((entry) => entry.startsWith(`${name}{`) && entry.includes(label));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('telemetry of a running worker on RabbitMQ', () => {
  let broker: TestBroker;
  let telemetry: Telemetry | undefined;
  const cleanUp: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    broker = await rabbitmq();
  });
  beforeEach(() => {
    clearOtelEnv(vi.stubEnv);
  });
  /** Run after telemetry's last export, which the receivers must still be there for. */
  const closeLast: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanUp.splice(0).reverse()) await step();
    await telemetry?.shutdown();
    for (const step of closeLast.splice(0)) await step();
    telemetry = undefined;
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    await broker?.close();
  });

  async function startWorker(
    options: {
      metrics?: boolean;
      level?: 'info' | 'debug';
      retry?: { maxAttempts: number; initialDelayMs: number };
    } = {},
  ) {
    const prefix = uniquePrefix();
    const producer: Transport = broker.transport();
    await producer.connect();
    await producer.declare(topologyFor('echo', { prefix }));
    cleanUp.push(() => broker.deleteTopology(prefix, 'echo'));
    if (options.retry !== undefined) {
      // The worker's policy declares delay queues of its own beside the producer's default ones.
      const retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
      cleanUp.push(() => broker.deleteTopology(prefix, 'echo', { retry }));
    }
    const reply = await replies(producer);
    const lines: Array<Record<string, unknown>> = [];
    const { logger } = createWorkerLogger({
      level: options.level ?? 'info',
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    const worker = await Worker.start({
      config: parseConfig(
        {
          topology: { prefix },
          handlers: [
            { module: ECHO, prefetch: 2, ...(options.retry ? { retry: options.retry } : {}) },
          ],
          health: { port: 0, host: '127.0.0.1' },
        },
        process.cwd(),
      ),
      logger,
      transport: broker.transport(),
      env: {},
      metrics: options.metrics === false ? undefined : telemetry?.prometheus,
    });
    cleanUp.push(async () => void (await worker.stop()));
    const base = `http://127.0.0.1:${worker.healthAddress!.port}`;
    const publisher = new JobPublisher(producer, { prefix });
    const echo = async (text: string) => {
      const before = reply.results.length;
      await publisher.publish({
        modelType: 'echo',
        tenant: 'acme',
        input: { text },
        replyTo: reply.queue,
      });
      await waitFor(() => reply.results.length > before, `the answer to ${text}`);
    };
    return { worker, base, lines, echo, publisher, reply };
  }

  it('serves /metrics on the health port as Prometheus text, with a counter moving as the API adds to it', async () => {
    telemetry = await startTelemetry({ prometheus: true, serviceName: 'warren-worker' });
    const { base } = await startWorker();
    const counter = metrics.getMeter('worker-test').createCounter('warren.test.scrapes', {
      description: 'Moved by the test',
    });

    counter.add(1, { step: 'first' });
    const first = await fetch(`${base}/metrics`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await first.text();
    expect(text).toContain('# TYPE warren_test_scrapes_total counter');
    expect(sample(text, 'warren_test_scrapes_total', 'step="first"')).toBe(1);
    expect(text).toMatch(/^target_info\{[^}]*service_name="warren-worker"/m);

    counter.add(2, { step: 'first' });
    const second = await (await fetch(`${base}/metrics`)).text();
    expect(sample(second, 'warren_test_scrapes_total', 'step="first"')).toBe(3);

    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    // The health endpoints are where they were.
    expect((await fetch(`${base}/livez`)).status).toBe(200);
  });

  it("shows core's job counters on /metrics once a job has run", async () => {
    telemetry = await startTelemetry({ prometheus: true });
    const { base, echo } = await startWorker();

    await echo('counted');
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(sample(text, 'warren_jobs_received_total')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^warren_jobs_finished_total\{/m);
  });

  it('counts jobs on /metrics by outcome as they succeed, retry and dead-letter', async () => {
    telemetry = await startTelemetry({ prometheus: true });
    const { base, echo, publisher, worker } = await startWorker({
      retry: { maxAttempts: 2, initialDelayMs: 50 },
    });
    const scrape = async () => (await fetch(`${base}/metrics`)).text();
    const finished = (text: string, outcome: string) =>
      sample(text, 'warren_jobs_finished_total', `warren_outcome="${outcome}"`) ?? 0;
    const before = await scrape();

    await echo('fine');
    await publisher.publish({
      modelType: 'echo',
      tenant: 'acme',
      input: { text: 'doomed', failWith: 'always' },
    });
    const counts = () => worker.consumers[0]!.consumer.counts;
    await waitFor(() => counts().deadLettered === 1, 'the dead letter');

    const after = await scrape();
    expect(finished(after, 'succeeded') - finished(before, 'succeeded')).toBe(1);
    expect(finished(after, 'retried') - finished(before, 'retried')).toBe(1);
    expect(finished(after, 'dead-lettered') - finished(before, 'dead-lettered')).toBe(1);
    expect(after).toMatch(
      /warren_jobs_finished_total\{[^}]*warren_outcome="dead-lettered"[^}]*warren_reason="handler-failed"/,
    );
  });

  it('is not ready before the handler has loaded its model and its consumer is active', async () => {
    const prefix = uniquePrefix();
    cleanUp.push(() => broker.deleteTopology(prefix, 'gated'));
    const port = await freePort();
    const gate = setupGate();
    const starting = Worker.start({
      config: parseConfig(
        {
          topology: { prefix },
          handlers: [{ module: GATED, prefetch: 2 }],
          health: { port, host: '127.0.0.1' },
        },
        process.cwd(),
      ),
      logger: pino({ level: 'silent' }),
      transport: broker.transport(),
      env: {},
    });
    const probe = async (path: string) => {
      for (;;) {
        try {
          return await fetch(`http://127.0.0.1:${port}${path}`);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };

    const loading = await probe('/readyz');
    expect(loading.status).toBe(503);
    expect(((await loading.json()) as WorkerHealth).consumers[0]).toMatchObject({
      id: 'gated',
      state: 'starting',
    });
    // Loading a model is not being dead.
    expect((await probe('/livez')).status).toBe(200);

    gate.open();
    const worker = await starting;
    cleanUp.push(async () => void (await worker.stop()));
    expect((await probe('/readyz')).status).toBe(200);
  });

  it('answers /metrics with 404 when the worker was given no metrics', async () => {
    telemetry = await startTelemetry();
    const { base } = await startWorker({ metrics: false });
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it("exports a real job's spans to an OTLP receiver under the worker's service name, and the job's log lines carry their trace id", async () => {
    const receiver = await OtlpReceiver.start();
    closeLast.push(() => receiver.close());
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    telemetry = await startTelemetry({ serviceName: 'warren-worker' });
    // At debug level the job's steps are logged from inside it.
    const { echo, lines } = await startWorker({ level: 'debug' });

    await echo('traced');
    await telemetry.forceFlush();

    const spans = receiver.spans();
    expect(spans.length).toBeGreaterThan(0);
    expect(new Set(spans.map((span) => span.service))).toEqual(new Set(['warren-worker']));
    // The producer's span and the worker's form one trace.
    expect(new Set(spans.map((span) => span.traceId)).size).toBe(1);
    const exported = new Set(spans.map((span) => `${span.traceId}/${span.spanId}`));
    const jobLines = lines.filter((line) => line.trace_id !== undefined);
    expect(jobLines.length).toBeGreaterThan(0);
    for (const line of jobLines) {
      expect(exported).toContain(`${line.trace_id}/${line.span_id}`);
      expect(line.trace_flags).toBe('01');
    }
  });
});
