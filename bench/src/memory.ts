import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AMQP_URL, type BenchBroker, paddedInput } from './broker.ts';
import { readSentences } from './inference.ts';
import { memoryOf } from './proc-memory.ts';
import { workerConfig } from './warren-run.ts';

const MODEL_TYPE = 'bench-noop';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKER_BIN = join(REPO_ROOT, 'apps/worker/bin/warren-worker.js');
const SAMPLE_EVERY_MS = 100;
/**
 * The V8 flags docs/operating.md suggests for a worker in a container: a heap limit, from which
 * V8 sizes its collections (by default the limit follows the machine's memory, and the heap fills
 * with garbage before the first full collection). The worker is measured with Node's defaults and
 * with these.
 */
export const WORKER_NODE_FLAGS = ['--max-old-space-size=512'];

export interface MemoryOptions {
  backlog: number;
  prefetch: number;
  bodyBytes: number;
  /** How long each process drains while it is sampled. */
  seconds: number;
  /** Jobs over which the live heap per job is measured (after as many again to warm up). */
  heapJobs: number;
  dataFile: string;
  modelPath: string;
  model: string;
}

/** Resident memory of one process while it drained the backlog. */
export interface DrainMemory {
  /** VmHWM at the end of the window: the peak since the process began. */
  peakRssMiB: number;
  /** VmRSS when it started consuming, and at the end of the window. */
  startRssMiB: number;
  endRssMiB: number;
  /** Jobs it finished in the window. */
  drained: number;
}

export interface MemoryResult {
  backlog: number;
  prefetch: number;
  seconds: number;
  /** The worker started with Node's default flags. */
  warren: DrainMemory;
  /** The worker started with {@link WORKER_NODE_FLAGS}. */
  warrenTuned: DrainMemory;
  flags: string[];
  plain: DrainMemory;
  /** RSS with the inference package imported, and the peak after loading and one batch. */
  model: { beforeMiB: number; peakMiB: number; costMiB: number };
  /** RSS of a process that imports nothing: Node alone, and Node with tsx's loader registered. */
  loader: { nodeMiB: number; tsxMiB: number };
  /** Live heap (after a forced collection) a running worker keeps per job handled. */
  heap: HeapGrowth;
}

/** Bytes of live heap per job, with the default in-memory dedupe store and with none. */
export interface HeapGrowth {
  jobs: number;
  bytesPerJob: { memoryDedupe: number; noDedupe: number };
}

/**
 * Measurement 4: the worker binary (no-op plugin) and a plain amqplib consumer process, each
 * started on a queue holding `backlog` jobs and sampled from /proc for `seconds` while they
 * drain; then the cost of the embedding model, loaded alone in a process.
 */
export async function measureMemory(
  broker: BenchBroker,
  options: MemoryOptions,
  log: (line: string) => void,
): Promise<MemoryResult> {
  const results = await broker.declare(MODEL_TYPE, 'noop-results');
  const queue = broker.topology(MODEL_TYPE).queue;
  const input = paddedInput(options.bodyBytes);
  const topUp = async () => {
    const missing = options.backlog - (await broker.depth(queue));
    if (missing > 0) await broker.fill(MODEL_TYPE, missing, () => input, results);
  };

  const configFile = join(tmpdir(), `${broker.prefix}-worker.json`);
  const config = workerConfig(broker, {
    plugin: 'noop.js',
    prefetch: options.prefetch,
    modelPath: options.modelPath,
  });
  await writeFile(configFile, JSON.stringify({ ...config, log: { level: 'info' } }));
  /** Tops the backlog up, starts `node <args>`, samples it while it drains, counts what it took. */
  const drain = async (args: string[], label: string): Promise<DrainMemory> => {
    await topUp();
    await broker.purge(results);
    const depthBefore = await broker.depth(queue);
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, AMQP_URL },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const drained = await sampleDrain(child, options.seconds);
    drained.drained = depthBefore - (await broker.depth(queue));
    log(`  ${label}: peak ${drained.peakRssMiB.toFixed(0)} MiB, ${drained.drained} jobs`);
    return drained;
  };
  const worker = (flags: string[]) =>
    drain(
      [...flags, WORKER_BIN, '--config', configFile],
      `warren worker (${flags.length === 0 ? 'default flags' : flags.join(' ')})`,
    );
  let warren: DrainMemory;
  let warrenTuned: DrainMemory;
  try {
    warren = await worker([]);
    warrenTuned = await worker(WORKER_NODE_FLAGS);
  } finally {
    await rm(configFile, { force: true });
  }
  const plainMain = fileURLToPath(new URL('./processes/plain-consumer-main.js', import.meta.url));
  const plain = await drain(
    [plainMain, AMQP_URL, queue, String(options.prefetch)],
    'plain consumer',
  );
  await broker.purge(queue);
  await broker.purge(results);

  const model = await measureModel(options);
  log(`  model: ${model.costMiB.toFixed(0)} MiB`);
  const loader = {
    nodeMiB: await emptyProcessRss([]),
    tsxMiB: await emptyProcessRss(['--import', 'tsx']),
  };
  log(
    `  empty process: ${loader.nodeMiB.toFixed(0)} MiB, with tsx ${loader.tsxMiB.toFixed(0)} MiB`,
  );
  const heap: HeapGrowth = {
    jobs: options.heapJobs,
    bytesPerJob: {
      memoryDedupe: await heapPerJob(options, 'memory'),
      noDedupe: await heapPerJob(options, 'none'),
    },
  };
  log(
    `  live heap per job: ${heap.bytesPerJob.memoryDedupe.toFixed(0)} B ` +
      `(${heap.bytesPerJob.noDedupe.toFixed(0)} B without dedupe)`,
  );
  return {
    backlog: options.backlog,
    prefetch: options.prefetch,
    seconds: options.seconds,
    warren,
    warrenTuned,
    flags: WORKER_NODE_FLAGS,
    plain,
    model,
    loader,
    heap,
  };
}

/** The RSS of a Node process started with `flags` that runs nothing, once it has settled. */
async function emptyProcessRss(flags: string[]): Promise<number> {
  const script =
    'setTimeout(() => console.log(JSON.stringify({ rss: process.memoryUsage().rss })), 500)';
  const { rss } = await runForJson<{ rss: number }>([
    ...flags,
    '--input-type=module',
    '-e',
    script,
  ]);
  return rss / 2 ** 20;
}

/**
 * Waits for the process to say `consumer started`, samples its memory for `seconds`, then stops
 * it with SIGTERM and waits for it to exit.
 */
async function sampleDrain(child: ChildProcess, seconds: number): Promise<DrainMemory> {
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout! });
  const started = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.includes('"consumer started"')) resolve();
    });
    void exited.then(([code]) => reject(new Error(`process exited (${code}) before consuming`)));
  });
  try {
    await started;
    const pid = child.pid!;
    const start = await memoryOf(pid);
    const endAt = performance.now() + seconds * 1000;
    let last = start;
    while (performance.now() < endAt) {
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
      last = await memoryOf(pid);
    }
    return {
      peakRssMiB: last.peakRssMiB,
      startRssMiB: start.rssMiB,
      endRssMiB: last.rssMiB,
      drained: 0,
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    lines.close();
  }
}

/** Runs heap-main.ts in a process of its own (it needs --expose-gc) and reads its answer. */
async function heapPerJob(options: MemoryOptions, store: 'memory' | 'none'): Promise<number> {
  const { before, after, jobs } = await runForJson<{ before: number; after: number; jobs: number }>(
    [
      '--expose-gc',
      '--import',
      'tsx',
      fileURLToPath(new URL('./processes/heap-main.ts', import.meta.url)),
      options.modelPath,
      String(options.prefetch),
      String(options.heapJobs),
      String(options.heapJobs),
      store,
    ],
    { env: { AMQP_URL } },
  );
  return (after - before) / jobs;
}

/** Runs node with `args` and parses the last line it prints as JSON. */
async function runForJson<T>(
  args: string[],
  options: { env?: Record<string, string>; stderr?: 'inherit' | 'ignore' } = {},
): Promise<T> {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', options.stderr ?? 'inherit'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) {
    const what = args.find((arg) => arg.endsWith('.ts')) ?? args.join(' ');
    throw new Error(`node ${what} exited with ${code}`);
  }
  return JSON.parse(output.trim().split('\n').at(-1)!) as T;
}

async function measureModel(options: MemoryOptions): Promise<MemoryResult['model']> {
  const textFile = join(tmpdir(), `warren-bench-${process.pid}-sentences.txt`);
  const sentences = (await readSentences(options.dataFile)).slice(0, 32);
  await writeFile(textFile, sentences.join('\n'));
  try {
    const { before, after } = await runForJson<{
      before: { rssMiB: number };
      after: { peakRssMiB: number };
    }>(
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./processes/model-rss-main.ts', import.meta.url)),
        options.modelPath,
        options.model,
        textFile,
      ],
      // transformers.js warns that it does not know use-lite-en's class; the results are right.
      { stderr: 'ignore' },
    );
    return {
      beforeMiB: before.rssMiB,
      peakMiB: after.peakRssMiB,
      costMiB: after.peakRssMiB - before.rssMiB,
    };
  } finally {
    await rm(textFile, { force: true });
  }
}
