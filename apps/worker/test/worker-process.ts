import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AMQP_URL, waitFor } from './support.ts';

const BIN = fileURLToPath(new URL('../bin/warren-worker.js', import.meta.url));

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A `warren-worker` process, its parsed log lines and how it ended. */
export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every JSON line it wrote to stdout so far, parsed. */
  lines(): Array<Record<string, unknown>>;
  /** Resolves once a line with this message has been logged. */
  logged(msg: string, timeoutMs?: number): Promise<void>;
}

/**
 * Starts `node bin/warren-worker.js --config <config>` on the test broker and Redis; `env` adds
 * to or replaces its environment (AMQP_URL and REDIS_URL included).
 */
export function spawnWorker(config: string, env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, [BIN, '--config', config], {
    env: { ...process.env, AMQP_URL, REDIS_URL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stdout = '';
  child.stdout!.setEncoding('utf-8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  // Read, so that a chatty stderr cannot fill its pipe and block the worker.
  child.stderr!.resume();
  const lines = () =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    child,
    exited,
    lines,
    logged: (msg, timeoutMs = 20_000) =>
      waitFor(() => lines().some((line) => line.msg === msg), `"${msg}" in the log`, timeoutMs),
  };
}

/** Kills a worker process that is still running; for clean-up after a failed test. */
export async function killIfRunning(worker: WorkerProcess | undefined): Promise<void> {
  if (worker === undefined || worker.child.exitCode !== null || worker.child.signalCode !== null) {
    return;
  }
  worker.child.kill('SIGKILL');
  await worker.exited;
}

/** Runs `redis-cli` against the test Redis; one line of output per reply (empty for nil). */
export async function redisCli(args: string[]): Promise<string[]> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-u', REDIS_URL, ...args]);
  return stdout === '' ? [] : stdout.replace(/\n$/, '').split('\n');
}

/** The dedupe keys (default prefix) of the jobs whose ids start with `idPrefix`, and values. */
export async function dedupeEntries(idPrefix: string): Promise<Map<string, string>> {
  const keys = await redisCli(['--scan', '--pattern', `warren:dedupe:${idPrefix}*`]);
  if (keys.length === 0) return new Map();
  const values = await redisCli(['mget', ...keys]);
  return new Map(keys.map((key, index) => [key.slice('warren:dedupe:'.length), values[index]!]));
}

/** Deletes the dedupe keys of the jobs whose ids start with `idPrefix`. */
export async function deleteDedupeEntries(idPrefix: string): Promise<void> {
  const keys = await redisCli(['--scan', '--pattern', `warren:dedupe:${idPrefix}*`]);
  if (keys.length > 0) await redisCli(['del', ...keys]);
}
