import { readFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LocalInference } from '@warren/inference';
import type { BenchBroker } from './broker.ts';
import { type CpuUse, NO_CPU_USE, startCpuMeter } from './cpu.ts';
import { type BatchSetting, drainWithWarren, workerTakesBatch } from './warren-run.ts';

const MODEL_TYPE = 'bench-embed';
const POOLING = 'cls';

export interface InferenceOptions {
  /** An STS Benchmark file; both sentences of every pair are embedded. */
  dataFile: string;
  /** Folder holding the model's folder. */
  modelPath: string;
  model: string;
  /** Jobs per model call, for Warren's batches and the direct calls alike. */
  batchSize: number;
  maxWaitMs: number;
  prefetch: number;
  /** Use only the first N sentences (all when absent). */
  limit?: number;
  rounds: number;
}

/** One way of embedding the sentences: its best run's throughput, loop delay and CPU use. */
export interface EmbedRun extends CpuUse {
  sentencesPerSecond: number;
  /** p99 of the event-loop delay while it ran, in ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

export interface InferenceResult {
  sentences: number;
  batchSize: number;
  maxWaitMs: number;
  prefetch: number;
  rounds: number;
  /** Whether this build's worker config takes a `batch` override (else a = c). */
  batchingAvailable: boolean;
  warrenBatched: EmbedRun;
  direct: EmbedRun;
  warrenUnbatched: EmbedRun;
  /** Wall time of loading the model in this process, in seconds. */
  modelLoadSeconds: number;
  /** Size of one job's result as Warren publishes it (JSON). */
  resultBytes: number;
}

/** Both sentences of every pair of an STS Benchmark file, in file order. */
export async function readSentences(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf-8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .flatMap((line) => line.split('\t').slice(5, 7));
}

/**
 * Measurements 2 and 5: sentences/s of (a) Warren with batching, (b) the same model called
 * directly in batches of the same size, (c) Warren without batching; and the event-loop delay
 * of each. The runs interleave (b, a, c per round) and the best of each is kept.
 */
export async function measureInference(
  broker: BenchBroker,
  options: InferenceOptions,
  log: (line: string) => void,
): Promise<InferenceResult> {
  const sentences = (await readSentences(options.dataFile)).slice(0, options.limit);
  const results = await broker.declare(MODEL_TYPE, 'embed-results');
  const inference = new LocalInference({
    localModelPath: options.modelPath,
    allowRemoteModels: false,
    dtype: 'fp32',
  });
  const loadStartedAt = performance.now();
  await inference.featureExtraction({
    model: options.model,
    inputs: ['warm up'],
    pooling: POOLING,
  });
  const modelLoadSeconds = (performance.now() - loadStartedAt) / 1000;
  const [sample] = await inference.featureExtraction({
    model: options.model,
    inputs: sentences.slice(0, 1),
    pooling: POOLING,
    normalize: true,
  });
  const resultBytes = Buffer.byteLength(JSON.stringify({ embedding: sample }));

  const direct = async (): Promise<number> => {
    const startedAt = performance.now();
    for (let start = 0; start < sentences.length; start += options.batchSize) {
      await inference.featureExtraction({
        model: options.model,
        inputs: sentences.slice(start, start + options.batchSize),
        pooling: POOLING,
        normalize: true,
      });
    }
    return sentences.length / ((performance.now() - startedAt) / 1000);
  };
  const warren = async (batch: BatchSetting, loop: RunMonitor): Promise<number> => {
    await broker.fill(MODEL_TYPE, sentences.length, (i) => ({ text: sentences[i]! }), results);
    const setup = {
      plugin: 'embed.ts',
      prefetch: options.prefetch,
      batch,
      modelPath: options.modelPath,
      options: { model: options.model, pooling: POOLING },
    };
    const run = await drainWithWarren(broker, setup, sentences.length, loop);
    await broker.purge(results);
    return run.jobsPerSecond;
  };

  const best = { batched: NO_RUN, direct: NO_RUN, unbatched: NO_RUN };
  for (let round = 1; round <= options.rounds; round += 1) {
    const variants = [
      ['direct', (loop: RunMonitor) => timed(loop, direct)],
      ['batched', (loop: RunMonitor) => warren(batchOf(options, options.batchSize), loop)],
      ['unbatched', (loop: RunMonitor) => warren(batchOf(options, 1), loop)],
    ] as const;
    for (const [name, run] of variants) {
      const loop = new RunMonitor();
      const sentencesPerSecond = await run(loop);
      const measured = { sentencesPerSecond, ...loop.summary() };
      if (measured.sentencesPerSecond > best[name].sentencesPerSecond) best[name] = measured;
      log(`  ${name} round ${round}: ${sentencesPerSecond.toFixed(0)} sentences/s`);
    }
  }

  return {
    sentences: sentences.length,
    batchSize: options.batchSize,
    maxWaitMs: options.maxWaitMs,
    prefetch: options.prefetch,
    rounds: options.rounds,
    batchingAvailable: workerTakesBatch(),
    warrenBatched: best.batched,
    direct: best.direct,
    warrenUnbatched: best.unbatched,
    modelLoadSeconds,
    resultBytes,
  };
}

const NO_RUN: EmbedRun = {
  sentencesPerSecond: 0,
  loopDelayP99Ms: 0,
  loopDelayMaxMs: 0,
  ...NO_CPU_USE,
};

function batchOf(options: InferenceOptions, maxSize: number): BatchSetting {
  return { maxSize, maxWaitMs: options.maxWaitMs };
}

async function timed(loop: RunMonitor, work: () => Promise<number>): Promise<number> {
  loop.start();
  try {
    return await work();
  } finally {
    loop.stop();
  }
}

/** The event-loop delay (perf_hooks, 10 ms resolution) and CPU time while something runs. */
export class RunMonitor {
  readonly #histogram = monitorEventLoopDelay({ resolution: 10 });
  #cpu: (() => CpuUse) | undefined;
  #used: CpuUse = NO_CPU_USE;

  start(): void {
    if (this.#cpu !== undefined) return;
    this.#cpu = startCpuMeter();
    this.#histogram.enable();
  }

  stop(): void {
    if (this.#cpu === undefined) return;
    this.#histogram.disable();
    this.#used = this.#cpu();
    this.#cpu = undefined;
  }

  /** Delay p99 and maximum in milliseconds, and CPU seconds used. */
  summary(): Omit<EmbedRun, 'sentencesPerSecond'> {
    return {
      loopDelayP99Ms: this.#histogram.percentile(99) / 1e6,
      loopDelayMaxMs: this.#histogram.max / 1e6,
      ...this.#used,
    };
  }
}
