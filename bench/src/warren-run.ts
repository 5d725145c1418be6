import { fileURLToPath } from 'node:url';
import type { ConsumerCounts } from '@warren/core';
import { loadHandler, parseConfig, Worker, workerConfigSchema } from '@warren/worker';
import { pino } from 'pino';
import type { BenchBroker } from './broker.ts';

/** A plugin in bench/plugins, by file name. */
export function pluginPath(file: string): string {
  return fileURLToPath(new URL(`../plugins/${file}`, import.meta.url));
}

/** How a worker's handler entry batches: `maxSize` 1 turns batching off. */
export interface BatchSetting {
  maxSize: number;
  maxWaitMs: number;
}

export interface WorkerSetup {
  /** File name in bench/plugins. */
  plugin: string;
  prefetch: number;
  concurrency?: number;
  batch?: BatchSetting;
  /** The handler's options from the worker config. */
  options?: unknown;
  /** Folder of local models; remote loading is always off. */
  modelPath: string;
  /** ONNX Runtime's threads per run (`inference.local.intraOpThreads`); its default if absent. */
  intraOpThreads?: number;
  /** Whether ONNX Runtime's threads may spin between runs (`inference.local.allowSpinning`). */
  allowSpinning?: boolean;
}

/**
 * Whether this build's worker config takes a `batch` override per handler. Without it the
 * batched and unbatched runs are the same run, and the report says so.
 */
export function workerTakesBatch(): boolean {
  const probe = {
    handlers: [{ module: 'probe', prefetch: 2, batch: { maxSize: 2, maxWaitMs: 1 } }],
  };
  return workerConfigSchema.safeParse(probe).success;
}

/** The worker config a bench worker runs with (also written to a file for the binary). */
export function workerConfig(broker: BenchBroker, setup: WorkerSetup): Record<string, unknown> {
  const handler: Record<string, unknown> = {
    module: pluginPath(setup.plugin),
    prefetch: setup.prefetch,
    concurrency: setup.concurrency ?? 1,
  };
  if (setup.options !== undefined) handler.options = setup.options;
  if (setup.batch !== undefined && workerTakesBatch()) handler.batch = setup.batch;
  return {
    topology: { prefix: broker.prefix },
    inference: {
      local: {
        modelPath: setup.modelPath,
        allowRemoteModels: false,
        ...(setup.intraOpThreads === undefined ? {} : { intraOpThreads: setup.intraOpThreads }),
        ...(setup.allowSpinning === undefined ? {} : { allowSpinning: setup.allowSpinning }),
      },
    },
    handlers: [handler],
    log: { level: 'warn' },
  };
}

/** What one drain of a pre-filled queue took. */
export interface DrainResult {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  /** Jobs/s over each tenth of the drain, first to last: shows a rate that changes as it runs. */
  tenths: number[];
  counts: ConsumerCounts;
  /** How long `Worker.stop()` took once the queue was drained. */
  stopSeconds: number;
}

/**
 * Starts a worker in this process on a queue already holding `jobs` jobs and times it until
 * every job has an outcome. The plugin is imported and the transport connected beforehand, so
 * the clock covers declaring, subscribing and draining, as a baseline's does.
 */
export async function drainWithWarren(
  broker: BenchBroker,
  setup: WorkerSetup,
  jobs: number,
  during?: { start(): void; stop(): void },
): Promise<DrainResult> {
  const config = parseConfig(workerConfig(broker, setup), process.cwd());
  await loadHandler(config.handlers[0]!.module, 0, config.handlers[0]!.options);
  const transport = broker.transport('warren-bench-worker');
  await transport.connect();
  const logger = pino({ level: 'warn' }, pino.destination(2));

  during?.start();
  const startedAt = performance.now();
  const worker = await Worker.start({ config, logger, transport, env: {} });
  const consumer = worker.consumers[0]!.consumer;
  let drained: Omit<DrainResult, 'stopSeconds' | 'counts'>;
  try {
    drained = await timeDrain(() => finished(consumer.counts), jobs, startedAt);
  } finally {
    during?.stop();
  }
  const stoppingAt = performance.now();
  await worker.stop();
  // A drain counts every outcome; a figure is only worth something if each job was handled.
  if (consumer.counts.succeeded < jobs) {
    throw new Error(
      `only ${consumer.counts.succeeded} of ${jobs} jobs succeeded: ` +
        JSON.stringify(consumer.counts),
    );
  }
  return {
    ...drained,
    counts: consumer.counts,
    stopSeconds: (performance.now() - stoppingAt) / 1000,
  };
}

/** Waits until `done()` reaches `jobs`, noting when each tenth of them was done. */
async function timeDrain(
  done: () => number,
  jobs: number,
  startedAt: number,
): Promise<Omit<DrainResult, 'stopSeconds' | 'counts'>> {
  const marks: number[] = [];
  await until(() => {
    const count = done();
    while (marks.length < 10 && count >= (jobs * (marks.length + 1)) / 10) {
      marks.push(performance.now());
    }
    return count >= jobs;
  });
  const seconds = (performance.now() - startedAt) / 1000;
  const tenths = marks.map(
    (at, i) => jobs / 10 / Math.max(0.001, (at - (marks[i - 1] ?? startedAt)) / 1000),
  );
  return { jobs, seconds, jobsPerSecond: jobs / seconds, tenths };
}

/** Jobs that have left the consumer, whatever their outcome. */
export function finished(counts: ConsumerCounts): number {
  return (
    counts.succeeded +
    counts.retried +
    counts.deferred +
    counts.deadLettered +
    counts.dropped +
    counts.duplicates +
    counts.requeued
  );
}

/** Resolves once `done()` holds, checking every `everyMs`; rejects with what `done()` throws. */
export function until(done: () => boolean, everyMs = 2, timeoutMs = 300_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const check = () => {
      let finished: boolean;
      try {
        finished = done();
      } catch (error) {
        return reject(error);
      }
      if (finished) return resolve();
      if (Date.now() - startedAt > timeoutMs) {
        return reject(new Error(`gave up after ${timeoutMs / 1000} s`));
      }
      setTimeout(check, everyMs);
    };
    check();
  });
}
