import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADERS } from '@warren/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProbe, uniquePrefix } from './support.ts';
import { killIfRunning, spawnWorker, type WorkerProcess } from './worker-process.ts';

const STRAY = fileURLToPath(new URL('./fixtures/stray-throw.ts', import.meta.url));

describe('warren-worker after an uncaught exception in a plugin', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let probe: BrokerProbe;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-uncaught-'));
    probe = await BrokerProbe.open();
  });

  afterAll(async () => {
    await killIfRunning(worker);
    await probe?.deleteTopology(prefix, ['stray-throw']);
    await probe?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('drains, says it stopped not ok, and exits 1', async () => {
    const config = join(dir, 'worker.json');
    await writeFile(
      config,
      JSON.stringify({ topology: { prefix }, handlers: [{ module: STRAY }] }),
    );
    worker = spawnWorker(config);
    await worker.logged('consumer started');
    const reply = await probe.replyQueue();
    probe.channel.publish(
      `${prefix}.jobs`,
      'stray-throw.public',
      Buffer.from(JSON.stringify({ text: 'the job' })),
      {
        contentType: 'application/json',
        messageId: `${prefix}-job`,
        replyTo: reply.queue,
        headers: { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'stray-throw' },
      },
    );

    const { code } = await worker.exited;
    expect(code).toBe(1);
    const lines = worker.lines();
    expect(lines.find((line) => line.level === 60)).toMatchObject({
      msg: 'uncaught exception; stopping the worker',
      err: { message: 'stray exception after the job' },
    });
    expect(lines.find((line) => line.msg === 'worker stopped')).toMatchObject({ ok: false });
    // The job itself had finished: its result went out before the stray timer fired.
    expect(reply.messages).toHaveLength(1);
  });
});
