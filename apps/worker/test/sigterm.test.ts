import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADERS } from '@warren/core';
import type { GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, BrokerProbe, uniquePrefix, waitFor } from './support.ts';
import { killIfRunning, spawnWorker, type WorkerProcess } from './worker-process.ts';

const BIN = fileURLToPath(new URL('../bin/warren-worker.js', import.meta.url));
const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const JOBS = 300;

function exitOf(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('warren-worker on SIGTERM', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let probe: BrokerProbe;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-sigterm-'));
    probe = await BrokerProbe.open();
  });

  afterAll(async () => {
    await probe?.deleteTopology(prefix, ['echo']);
    await probe?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stops consuming, publishes what it computed, loses no job and exits 0', async () => {
    const config = join(dir, 'worker.json');
    await writeFile(
      config,
      JSON.stringify({
        topology: { prefix },
        handlers: [{ module: ECHO, prefetch: 8, concurrency: 2 }],
        shutdown: { drainTimeoutMs: 10_000 },
      }),
    );
    const child = spawn(process.execPath, [BIN, '--config', config], {
      env: { ...process.env, AMQP_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = exitOf(child);
    const stdout: string[] = [];
    child.stdout!.setEncoding('utf-8').on('data', (chunk: string) => stdout.push(chunk));
    await waitFor(() => stdout.join('').includes('consumer started'), 'the worker to start');

    const reply = await probe.replyQueue();
    for (let i = 0; i < JOBS; i += 1) {
      probe.channel.publish(
        `${prefix}.jobs`,
        'echo.public',
        Buffer.from(JSON.stringify({ text: `job ${i}`, sleepMs: 10 })),
        {
          contentType: 'application/json',
          messageId: `job-${i}`,
          replyTo: reply.queue,
          headers: { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'echo' },
        },
      );
    }
    await waitFor(() => reply.messages.length >= 40, 'the first results');
    child.kill('SIGTERM');
    const { code } = await exited;
    // Results published just before the exit may still be on their way to us.
    await new Promise((resolve) => setTimeout(resolve, 500));

    expect(code).toBe(0);
    const answered = reply.messages.map((m) => m.properties.correlationId as string);
    expect(new Set(answered).size, 'one result per job').toBe(answered.length);
    const { messageCount } = await probe.messageCount(`${prefix}.jobs.echo`);
    expect(answered.length, 'some jobs were left for the next worker').toBeLessThan(JOBS);
    expect(answered.length + messageCount, 'every job has a result or is still queued').toBe(JOBS);

    const lines = stdout
      .join('')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const last = lines.find((line) => line.msg === 'worker stopped') as {
      counts: { echo: { succeeded: number } };
    };
    expect(last.counts.echo.succeeded, 'every computed result was published').toBe(answered.length);
  });
});

describe('warren-worker on SIGTERM with jobs running and jobs waiting', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let probe: BrokerProbe;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-sigterm-'));
    probe = await BrokerProbe.open();
  });
  afterAll(async () => {
    await killIfRunning(worker);
    await probe?.deleteTopology(prefix, ['echo']);
    await probe?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('finishes and acks the started jobs, leaves the others queued as they were, and exits 0', async () => {
    const config = join(dir, 'worker.json');
    await writeFile(
      config,
      JSON.stringify({
        topology: { prefix },
        handlers: [{ module: ECHO, prefetch: 5, concurrency: 5 }],
        shutdown: { drainTimeoutMs: 10_000 },
      }),
    );
    worker = spawnWorker(config);
    await worker.logged('consumer started');
    const queue = `${prefix}.jobs.echo`;
    const reply = await probe.replyQueue();
    const deadLetters = await probe.collect(`${prefix}.dead-letter.echo`);
    const ids = Array.from({ length: 25 }, (_, n) => `${prefix}-job-${n}`);
    for (const messageId of ids) {
      probe.channel.publish(
        `${prefix}.jobs`,
        'echo.public',
        Buffer.from(JSON.stringify({ text: messageId, sleepMs: 2_000 })),
        {
          contentType: 'application/json',
          messageId,
          replyTo: reply.queue,
          headers: {
            [HEADERS.tenant]: 'acme',
            [HEADERS.modelType]: 'echo',
            [HEADERS.attempt]: 1,
          },
        },
      );
    }
    // Five jobs taken (a sixth may wait for a slot while prefetch rises from 1 to 5).
    const deadline = Date.now() + 20_000;
    while ((await probe.messageCount(queue)).messageCount > 20) {
      if (Date.now() > deadline) throw new Error('the worker took no five jobs within 20 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reply.messages).toHaveLength(0);

    worker.child.kill('SIGTERM');
    const { code } = await worker.exited;
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(code).toBe(0);
    const answered = reply.messages.map((m) => String(m.properties.correlationId));
    expect(answered).toHaveLength(5);
    expect(new Set(answered).size).toBe(5);
    // Unacked, the five would be back in the queue: only the jobs never finished are there.
    const queued = await drain(probe, queue);
    expect(queued.map((m) => m.properties.messageId).sort()).toEqual(
      ids.filter((id) => !answered.includes(id)).sort(),
    );
    for (const message of queued) {
      const headers = message.properties.headers ?? {};
      expect(headers[HEADERS.attempt], 'attempt unchanged').toBe(1);
      // A quorum queue's count of failed deliveries, which its delivery limit reads.
      expect(headers['x-delivery-count'] ?? 0, 'not counted as a redelivery').toBe(0);
      expect(headers['x-death']).toBeUndefined();
      expect(message.fields.redelivered).toBe(false);
    }
    expect(deadLetters).toHaveLength(0);
    const stopped = worker.lines().find((line) => line.msg === 'worker stopped') as {
      counts: { echo: Record<string, number> };
    };
    expect(stopped.counts.echo).toMatchObject({ succeeded: 5, retried: 0, deadLettered: 0 });
  });
});

/** Takes every message left in `queue`, acking each. */
async function drain(probe: BrokerProbe, queue: string): Promise<GetMessage[]> {
  const messages: GetMessage[] = [];
  for (;;) {
    const message = await probe.channel.get(queue, { noAck: true });
    if (message === false) return messages;
    messages.push(message);
  }
}
