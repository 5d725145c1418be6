import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DEFAULT_RETRY_POLICY, topologyFor } from '@warren/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { answeredTwice, resultsByJob } from './fault-lab.ts';
import { BrokerProbe, uniquePrefix, waitFor } from './support.ts';
import {
  dedupeEntries,
  deleteDedupeEntries,
  killIfRunning,
  spawnWorker,
  type WorkerProcess,
} from './worker-process.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const JOBS = 200;
const CONCURRENCY = 4;
/** Deferred jobs (claimed by the killed worker) come back every 200 ms until its lease ends. */
const RETRY = { ...DEFAULT_RETRY_POLICY, initialDelayMs: 200, jitter: 0 };

describe('a worker process killed with SIGKILL mid-run', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let probe: BrokerProbe;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-kill-'));
    probe = await BrokerProbe.open();
  });
  afterEach(async () => {
    for (const worker of workers.splice(0)) await killIfRunning(worker);
  });
  afterAll(async () => {
    await probe?.deleteTopology(prefix, ['echo'], { retry: RETRY });
    await probe?.close();
    await deleteDedupeEntries(`${prefix}-`);
    await rm(dir, { recursive: true, force: true });
  });

  function start(config: string): WorkerProcess {
    const worker = spawnWorker(config);
    workers.push(worker);
    return worker;
  }

  it('leaves no job without a result once a new worker takes over, the killed one’s claims included', async () => {
    const config = join(dir, 'worker.json');
    await writeFile(
      config,
      JSON.stringify({
        topology: { prefix },
        // A short lease: the jobs the killed worker claimed can run again two seconds later.
        dedupe: { store: 'redis', leaseMs: 2_000, ttlMs: 600_000 },
        handlers: [{ module: ECHO, prefetch: 8, concurrency: CONCURRENCY, retry: RETRY }],
      }),
    );
    const first = start(config);
    await first.logged('consumer started');
    // Redelivered jobs come first at prefetch 1, and the line says so beside the configured one.
    expect(first.lines().find((line) => line.msg === 'consumer started')).toMatchObject({
      prefetch: 1,
      configuredPrefetch: 8,
    });
    const reply = await probe.replyQueue();
    const deadLetters = await probe.collect(`${prefix}.dead-letter.echo`);
    const ids = Array.from({ length: JOBS }, (_, n) => `${prefix}-job-${n}`);
    await probe.publishEchoJobs(prefix, ids, { replyTo: reply.queue, sleepMs: 50 });

    await waitFor(() => reply.messages.length >= 50, 'the first 50 results');
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    // The jobs it had claimed and not finished: they must still be run, by the next worker.
    const entries = await dedupeEntries(`${prefix}-`);
    const unfinished = [...entries].filter(([, value]) => value === 'running').map(([id]) => id);
    expect(unfinished.length, 'jobs the killed worker was running').toBeGreaterThan(0);
    // Results it published just before it died may still be on their way.
    await sleep(200);
    const beforeTakeover = new Set(reply.messages.map((m) => String(m.properties.correlationId)));

    const second = start(config);
    await waitFor(() => resultsByJob(reply.messages).size === JOBS, 'every result', 60_000);
    await quiet(probe, prefix);
    second.child.kill('SIGTERM');
    const { code } = await second.exited;

    expect(code).toBe(0);
    const byJob = resultsByJob(reply.messages);
    expect([...byJob.keys()].sort()).toEqual([...ids].sort());
    for (const id of unfinished) expect(byJob.has(id), `a result for ${id}`).toBe(true);
    // Documented in docs/dedupe.md: a worker that dies after its result is out and before it
    // records the job done leaves the job to run again. Only a job running at the kill can be
    // answered twice, and only when its first result came from the killed worker.
    const twice = answeredTwice(byJob);
    expect(twice.length).toBeLessThanOrEqual(CONCURRENCY);
    for (const id of twice) {
      expect(unfinished, `${id} was running at the kill`).toContain(id);
      expect(beforeTakeover.has(id), `${id} was answered by the killed worker`).toBe(true);
    }
    expect(deadLetters).toHaveLength(0);
    const stopped = second.lines().find((line) => line.msg === 'worker stopped') as {
      counts: { echo: { retried: number; deadLettered: number } };
    };
    expect(stopped.counts.echo).toMatchObject({ retried: 0, deadLettered: 0 });
  }, 90_000);
});

/** Waits until the work queue and every delay queue are empty: no job left to come back. */
async function quiet(probe: BrokerProbe, prefix: string): Promise<void> {
  const topology = topologyFor('echo', { prefix, retry: RETRY });
  const queues = [topology.queue, ...topology.delayQueues.map((queue) => queue.name)];
  const counts = async () => {
    const all = await Promise.all(queues.map((queue) => probe.messageCount(queue)));
    return all.reduce((sum, { messageCount }) => sum + messageCount, 0);
  };
  const deadline = Date.now() + 20_000;
  while ((await counts()) > 0) {
    if (Date.now() > deadline) throw new Error('jobs still queued 20 s after the last result');
    await sleep(100);
  }
}
