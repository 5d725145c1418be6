import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADERS } from '@warren/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OtlpReceiver } from '../../../packages/telemetry/test/otlp-receiver.ts';
import { AMQP_URL, BrokerProbe, uniquePrefix, waitFor } from './support.ts';

const BIN = fileURLToPath(new URL('../bin/warren-worker.js', import.meta.url));
const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/** The environment without the shell's own OTEL_* settings. */
function envWithout(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_')),
  );
}

function run(config: string, env: NodeJS.ProcessEnv) {
  const child: ChildProcess = spawn(process.execPath, [BIN, '--config', config], {
    env: { ...envWithout(), AMQP_URL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf-8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr!.setEncoding('utf-8').on('data', (chunk: string) => (output.stderr += chunk));
  const lines = () =>
    output.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { child, exited, output, lines };
}

describe('warren-worker with OTEL_* set', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let probe: BrokerProbe;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-telemetry-'));
    probe = await BrokerProbe.open();
    config = join(dir, 'worker.json');
    await writeFile(
      config,
      JSON.stringify({
        topology: { prefix },
        handlers: [{ module: ECHO, prefetch: 4 }],
        health: { port: 0, host: '127.0.0.1' },
        // The job's steps are logged at debug level, from inside its span.
        log: { level: 'debug' },
      }),
    );
  });
  afterAll(async () => {
    await probe?.deleteTopology(prefix, ['echo']);
    await probe?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves /metrics, and on SIGTERM sends the spans and metrics it still held before exiting 0', async () => {
    const receiver = await OtlpReceiver.start();
    try {
      const worker = run(config, {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        // Nothing leaves on a timer during the test: only the shutdown flush sends.
        OTEL_BSP_SCHEDULE_DELAY: '600000',
        OTEL_METRIC_EXPORT_INTERVAL: '600000',
      });
      await waitFor(
        () => worker.lines().some((line) => line.msg === 'consumer started'),
        'the worker to start',
      );
      const { port } = worker.lines().find((line) => line.msg === 'health endpoints listening')!;

      const reply = await probe.replyQueue();
      probe.channel.publish(`${prefix}.jobs`, 'echo.public', Buffer.from('{"text":"traced"}'), {
        contentType: 'application/json',
        messageId: 'job-traced',
        replyTo: reply.queue,
        headers: {
          [HEADERS.tenant]: 'acme',
          [HEADERS.modelType]: 'echo',
          [HEADERS.traceparent]: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
          [HEADERS.baggage]: 'tenant=t1',
        },
      });
      await waitFor(() => reply.messages.length === 1, 'the result');

      const scrape = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(scrape.status).toBe(200);
      expect(await scrape.text()).toMatch(/^warren_jobs_received_total\{[^}]*\} 1$/m);
      expect(receiver.requests).toEqual([]);

      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);

      const spans = receiver.spans();
      expect(spans.length).toBeGreaterThan(0);
      for (const span of spans) {
        expect(span.service).toBe('warren-worker');
        expect(span.traceId).toBe(TRACE_ID);
      }
      expect(receiver.sumPoints().map((point) => point.metric)).toContain('warren.jobs.received');
      const started = worker.lines().find((line) => line.msg === 'telemetry started');
      expect(started).toMatchObject({ traces: ['otlp'], metrics: ['otlp', 'prometheus'] });
      expect(worker.lines().some((line) => line.trace_id === TRACE_ID)).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('refuses an OTEL_* value it cannot honour with exit code 2, naming the variable', async () => {
    const worker = run(config, { OTEL_TRACES_EXPORTER: 'jaeger' });
    expect(await worker.exited).toBe(2);
    expect(worker.output.stderr).toContain(
      'OTEL_TRACES_EXPORTER: expected "otlp", "console" or "none", found "jaeger"',
    );
  });
});
