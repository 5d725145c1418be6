import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProbe, uniquePrefix } from './support.ts';
import { killIfRunning, spawnWorker, type WorkerProcess } from './worker-process.ts';

const SETUP_FAILS = fileURLToPath(new URL('./fixtures/setup-fails.ts', import.meta.url));

describe('warren-worker whose handler setup keeps failing', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let probe: BrokerProbe;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-failed-setup-'));
    probe = await BrokerProbe.open();
  });

  afterAll(async () => {
    await killIfRunning(worker);
    await probe?.deleteTopology(prefix, ['setup-fails']);
    await probe?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('retries it within the restart budget, then says why it could not start and exits 1', async () => {
    const config = join(dir, 'worker.json');
    await writeFile(
      config,
      JSON.stringify({
        topology: { prefix },
        handlers: [{ module: SETUP_FAILS }],
        supervisor: {
          backoff: { initialDelayMs: 50, maxDelayMs: 100 },
          budget: { maxRestarts: 2, withinMs: 60_000 },
        },
      }),
    );
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
});
