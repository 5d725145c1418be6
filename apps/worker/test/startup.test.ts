import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADERS, topologyFor } from '@warren/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProbe, uniquePrefix, waitFor } from './support.ts';
import { killIfRunning, spawnWorker, type WorkerProcess } from './worker-process.ts';

const SETUP_FAILS = fileURLToPath(new URL('./fixtures/setup-fails.ts', import.meta.url));
const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const SETUP_HANGS = fileURLToPath(new URL('./fixtures/setup-hangs.ts', import.meta.url));
const SLOW_SETUP = fileURLToPath(new URL('./fixtures/slow-setup.ts', import.meta.url));

describe('warren-worker while a handler setup keeps failing', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let probe: BrokerProbe;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-failed-setup-'));
    probe = await BrokerProbe.open();
  });

  /** Writes a worker config on this suite's prefix into the scratch folder, and names it. */
  async function configFile(file: string, config: Record<string, unknown>): Promise<string> {
    const path = join(dir, file);
    await writeFile(path, JSON.stringify({ topology: { prefix }, ...config }));
    return path;
  }

  afterEach(async () => {
    await killIfRunning(worker);
  });

  afterAll(async () => {
    await probe?.deleteTopology(prefix, ['setup-fails', 'echo', 'setup-hangs', 'slow-setup']);
    await probe?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('retries it within the restart budget, then says why it could not start and exits 1', async () => {
    const config = await configFile('worker.json', {
      handlers: [{ module: SETUP_FAILS }],
      supervisor: {
        backoff: { initialDelayMs: 50, maxDelayMs: 100 },
        budget: { maxRestarts: 2, withinMs: 60_000 },
      },
    });
    worker = spawnWorker(config);

    const { code, signal } = await worker.exited;
    expect({ code, signal }).toEqual({ code: 1, signal: null });
    const lines = worker.lines();
    // Two restarts (the log folds repeats of a line into one with a count), then the budget is
    // spent on the third failure.
    const restarts = lines
      .filter((line) => line.msg === 'actor crashed; restarting it')
      .reduce((sum, line) => sum + ((line.repeated as number | undefined) ?? 1), 0);
    expect(restarts).toBe(2);
    expect(lines.find((line) => line.msg === 'restart budget spent; escalating')).toMatchObject({
      err: { message: 'no model in the folder' },
    });
    expect(lines.find((line) => line.msg === 'worker failed to start')).toMatchObject({
      level: 60,
      code: 'WARREN_MODEL_LOAD_FAILED',
      err: { message: 'no model in the folder' },
    });
  });

  it('on SIGTERM meanwhile, cancels the retry, drains the handler already serving and exits 0', async () => {
    const config = await configFile('worker-signal.json', {
      handlers: [{ module: ECHO }, { module: SETUP_FAILS }],
      // The failing setup waits a minute for its retry: the signal comes in that wait.
      supervisor: { backoff: { initialDelayMs: 60_000, maxDelayMs: 60_000 } },
      shutdown: { drainTimeoutMs: 10_000 },
    });
    worker = spawnWorker(config);
    await worker.logged('consumer started');
    await worker.logged('actor crashed; restarting it');

    const reply = await probe.replyQueue();
    const { queue } = topologyFor('echo', { prefix });
    probe.channel.publish(
      `${prefix}.jobs`,
      'echo.public',
      Buffer.from(JSON.stringify({ text: 'in flight', sleepMs: 1_500 })),
      {
        contentType: 'application/json',
        messageId: `${prefix}-in-flight`,
        replyTo: reply.queue,
        headers: { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'echo' },
      },
    );
    // Taken by the echo consumer, and so started (it runs one job at a time and has no other).
    while ((await probe.messageCount(queue)).messageCount > 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    worker.child.kill('SIGTERM');

    const { code, signal } = await worker.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // The job in flight finished and its result went out; nothing went back to the queue.
    await waitFor(() => reply.messages.length > 0, 'the result of the job in flight');
    expect(reply.messages.map((message) => JSON.parse(message.content.toString()))).toEqual([
      { echo: 'in flight' },
    ]);
    expect((await probe.messageCount(queue)).messageCount).toBe(0);
    const lines = worker.lines();
    expect(lines.find((line) => line.msg === 'worker stopped')).toMatchObject({ ok: true });
    expect(lines.some((line) => line.msg === 'worker failed to start')).toBe(false);
  });

  it('on SIGTERM during a setup that never ends, drains the other handler, exits 0 after the drain timeout', async () => {
    const config = await configFile('worker-hangs.json', {
      handlers: [{ module: ECHO }, { module: SETUP_HANGS }],
      shutdown: { drainTimeoutMs: 200 },
    });
    worker = spawnWorker(config);
    await worker.logged('consumer started');
    worker.child.kill('SIGTERM');

    // The setup holds a timer open: the process ends anyway, once the worker has stopped.
    const { code, signal } = await worker.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const lines = worker.lines();
    expect(lines.map((line) => line.msg)).toContain(
      "jobs or a handler's setup did not finish in time; closing under them",
    );
    // The echo consumer drained in time, so the stop is clean.
    expect(lines.find((line) => line.msg === 'worker stopped')).toMatchObject({ ok: true });
  });

  /** A worker on the slow-setup handler alone, once its setup has begun, and then SIGTERMed. */
  async function signalledDuringSlowSetup(file: string): Promise<WorkerProcess> {
    const config = await configFile(file, { handlers: [{ module: SLOW_SETUP }] });
    const started = spawnWorker(config);
    await started.logged('slow setup begins');
    started.child.kill('SIGTERM');
    return started;
  }

  it('on SIGTERM during a setup that then succeeds, starts no consumer for it and exits 0', async () => {
    worker = await signalledDuringSlowSetup('worker-slow.json');

    const { code, signal } = await worker.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const messages = worker.lines().map((line) => line.msg);
    expect(messages).toContain('stop requested; a second signal ends the process at once');
    expect(messages).not.toContain('consumer started');
  });

  it('ends at once on a second signal of the other kind while it stops', async () => {
    worker = await signalledDuringSlowSetup('worker-twice.json');
    await worker.logged('stop requested; a second signal ends the process at once');
    worker.child.kill('SIGINT');

    expect(await worker.exited).toEqual({ code: null, signal: 'SIGINT' });
    expect(worker.lines().map((line) => line.msg)).not.toContain('worker stopped');
  });
});
