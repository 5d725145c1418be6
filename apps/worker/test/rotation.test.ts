import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultsByJob } from './fault-lab.ts';
import { BrokerProbe, testBroker, uniquePrefix, waitFor } from './support.ts';
import { killIfRunning, spawnWorker, type WorkerProcess } from './worker-process.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const JOBS = 1_000;
const run = promisify(execFile);

async function rabbitmqctl(args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', ['-q', ...args]);
  return stdout;
}

/** How many connections the broker has open for `user`. */
async function connectionsOf(user: string): Promise<number> {
  const listing = await rabbitmqctl(['list_connections', 'user', '--no-table-headers']);
  return listing.split('\n').filter((line) => line.trim() === user).length;
}

/** Replaces the secret the way a secret manager does: a new file renamed over the old one. */
async function writeSecret(path: string, username: string, password: string): Promise<void> {
  const next = `${path}.${randomUUID().slice(0, 8)}.tmp`;
  await writeFile(next, JSON.stringify({ username, password }), { mode: 0o600 });
  await rename(next, path);
}

describe('a worker whose broker password is rotated mid-run', () => {
  const prefix = uniquePrefix();
  const user = `warren-worker-${prefix}`;
  const passwords = [`first-${randomUUID()}`, `second-${randomUUID()}`];
  let dir: string;
  let probe: BrokerProbe;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-rotation-'));
    probe = await BrokerProbe.open();
    await rabbitmqctl(['add_user', user, passwords[0]!]);
    await rabbitmqctl(['set_permissions', '-p', '/', user, '.*', '.*', '.*']);
  });
  afterAll(async () => {
    await killIfRunning(worker);
    await probe?.deleteTopology(prefix, ['echo']);
    await probe?.close();
    await rabbitmqctl(['delete_user', user]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  it('moves to the new password without losing a job or answering one twice, and audits it', async () => {
    const secret = join(dir, 'broker.json');
    await writeSecret(secret, user, passwords[0]!);
    const config = join(dir, 'worker.json');
    const { url } = testBroker();
    await writeFile(
      config,
      JSON.stringify({
        broker: { url, credentials: { file: 'broker.json' }, connectionName: `warren-${prefix}` },
        topology: { prefix },
        handlers: [{ module: ECHO, prefetch: 16, concurrency: 4 }],
        security: { auditLog: 'audit.log' },
      }),
    );
    // The URL without a password: the secret file is the only source of one.
    worker = spawnWorker(config, { AMQP_URL: url });
    await worker.logged('consumer started');
    expect(await connectionsOf(user)).toBe(1);
    const reply = await probe.replyQueue();
    const deadLetters = await probe.collect(`${prefix}.dead-letter.echo`);

    const ids = await publishJobs(probe, prefix, reply.queue, 0, JOBS / 2);
    await waitFor(() => reply.messages.length >= 150, 'the first results');
    // Rotate while jobs run: the broker first, then the secret the worker watches.
    await rabbitmqctl(['change_password', user, passwords[1]!]);
    await writeSecret(secret, user, passwords[1]!);
    ids.push(...(await publishJobs(probe, prefix, reply.queue, JOBS / 2, JOBS)));

    await worker.logged('broker credentials rotated');
    await waitFor(() => reply.messages.length >= JOBS, 'every result', 60_000);
    await worker.logged('previous broker connection closed');
    expect(await connectionsOf(user)).toBe(1);

    // Every job has exactly one result message: none missing, none twice, not even a copy.
    const perJob = new Map<string, number>();
    for (const message of reply.messages) {
      const job = String(message.properties.correlationId);
      perJob.set(job, (perJob.get(job) ?? 0) + 1);
    }
    expect([...perJob.keys()].sort()).toEqual([...ids].sort());
    expect([...perJob].filter(([, count]) => count !== 1)).toEqual([]);
    expect(resultsByJob(reply.messages).size).toBe(JOBS);
    expect(deadLetters).toHaveLength(0);

    const rotated = worker.lines().find((line) => line.msg === 'broker credentials rotated');
    expect(rotated).toMatchObject({ username: user });
    const stdout = JSON.stringify(worker.lines());
    for (const password of passwords) expect(stdout).not.toContain(password);

    const audit = (await readFile(join(dir, 'audit.log'), 'utf-8'))
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => String(entry.event).startsWith('warren.credentials.'));
    expect(audit).toEqual([
      expect.objectContaining({
        event: 'warren.credentials.rotated',
        decision: 'accepted',
        identity: `user:${user}`,
        time: expect.any(String),
      }),
    ]);

    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
    const stopped = worker.lines().find((line) => line.msg === 'worker stopped') as {
      counts: { echo: { succeeded: number; retried: number; deadLettered: number } };
    };
    expect(stopped.counts.echo).toMatchObject({ succeeded: JOBS, retried: 0, deadLettered: 0 });
  }, 60_000);
});

/** Publishes jobs `from` to `to` (each taking 5 ms) with a confirm; returns their message ids. */
async function publishJobs(
  probe: BrokerProbe,
  prefix: string,
  replyTo: string,
  from: number,
  to: number,
): Promise<string[]> {
  const ids = Array.from({ length: to - from }, (_, n) => `${prefix}-job-${from + n}`);
  await probe.publishEchoJobs(prefix, ids, { replyTo, sleepMs: 5 });
  return ids;
}
