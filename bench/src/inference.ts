import { readFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  defaultIntraOpThreads,
  LocalInference,
  type LocalInferenceOptions,
} from '@warren/inference';
import type { BenchBroker } from './broker.ts';
import { type CpuUse, NO_CPU_USE, startCpuMeter } from './cpu.ts';
import { startPlainEmbedder } from './plain-embedder.ts';
import { drainWithWarren, until, type WorkerSetup, workerTakesBatch } from './warren-run.ts';

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
  /** Handler calls at once in Warren's runs. */
  concurrency: number;
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
  concurrency: number;
  rounds: number;
  /** Whether this build's worker config takes a `batch` override (else a = c). */
  batchingAvailable: boolean;
  /** ONNX Runtime's threads per run in (a) to (d): LocalInference's default on this machine. */
  intraOpThreads: number;
  warrenBatched: EmbedRun;
  direct: EmbedRun;
  warrenUnbatched: EmbedRun;
  /** (d) An embedding worker written on amqplib, batches of the same size. */
  plainQueue: EmbedRun;
  /** (e) as (a), and (f) as (b), with ONNX Runtime on one thread. */
  warrenOneThread: EmbedRun;
  directOneThread: EmbedRun;
  /** (g) as (a), and (h) as (c), with ONNX Runtime's threads allowed to spin (its default). */
  warrenSpinning: EmbedRun;
  unbatchedSpinning: EmbedRun;
  /** Every run's rate, in the order they ran, by letter (a to h). */
  runs: Array<{ run: string; sentencesPerSecond: number }>;
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

type Variant =
  | 'batched'
  | 'direct'
  | 'unbatched'
  | 'plainQueue'
  | 'warrenOneThread'
  | 'directOneThread'
  | 'warrenSpinning'
  | 'unbatchedSpinning';

/**
 * Measurements 2 and 5: sentences/s of (a) Warren with batching, (b) the same model called
 * directly in batches of the same size, (c) Warren without batching, (d) an embedding worker
 * written on amqplib; then (e) as (a) and (f) as (b) with ONNX Runtime held to one thread, so
 * that a core is left to the event loop and the broker; then (g) as (a) and (h) as (c) with
 * ONNX Runtime's threads allowed to spin between runs. Also the event-loop delay and CPU time
 * of each. The runs interleave (b, a, c, d, f, e, g, h per round) and the best of each is kept.
 */
export async function measureInference(
  broker: BenchBroker,
  options: InferenceOptions,
  log: (line: string) => void,
): Promise<InferenceResult> {
  const sentences = (await readSentences(options.dataFile)).slice(0, options.limit);
  const results = await broker.declare(MODEL_TYPE, 'embed-results');
  const queue = broker.topology(MODEL_TYPE).queue;
  const intraOpThreads = defaultIntraOpThreads();
  const inference = new LocalInference(localModels(options.modelPath, intraOpThreads));
  const oneThread = new LocalInference(localModels(options.modelPath, 1));
  // Loaded here only so that the model is in the process's cache before (g) and (h) start.
  const spinning = new LocalInference({
    ...localModels(options.modelPath, intraOpThreads),
    allowSpinning: true,
  });
  const loadStartedAt = performance.now();
  await warmUp(inference, options.model);
  const modelLoadSeconds = (performance.now() - loadStartedAt) / 1000;
  await warmUp(oneThread, options.model);
  await warmUp(spinning, options.model);
  const [sample] = await inference.featureExtraction({
    model: options.model,
    inputs: sentences.slice(0, 1),
    pooling: POOLING,
    normalize: true,
  });
  const resultBytes = Buffer.byteLength(JSON.stringify({ embedding: sample }));
  const connection = await broker.connectPlain('warren-bench-embedder');

  // As many calls in flight as Warren's handler calls, so that both can tokenise a batch while
  // the model runs another: the baseline does all that calling the model by hand can.
  const direct = async (client: LocalInference): Promise<number> => {
    const startedAt = performance.now();
    let next = 0;
    const caller = async () => {
      while (next < sentences.length) {
        const start = next;
        next += options.batchSize;
        await client.featureExtraction({
          model: options.model,
          inputs: sentences.slice(start, start + options.batchSize),
          pooling: POOLING,
          normalize: true,
        });
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, caller));
    return sentences.length / ((performance.now() - startedAt) / 1000);
  };
  const fill = () =>
    broker.fill(MODEL_TYPE, sentences.length, (i) => ({ text: sentences[i]! }), results);
  const warren = async (
    maxSize: number,
    loop: RunMonitor,
    onnx: Pick<WorkerSetup, 'intraOpThreads' | 'allowSpinning'> = {},
  ): Promise<number> => {
    await fill();
    const setup: WorkerSetup = {
      plugin: 'embed.ts',
      prefetch: options.prefetch,
      concurrency: options.concurrency,
      batch: { maxSize, maxWaitMs: options.maxWaitMs },
      modelPath: options.modelPath,
      options: { model: options.model, pooling: POOLING },
      ...onnx,
    };
    const run = await drainWithWarren(broker, setup, sentences.length, loop);
    await broker.purge(results);
    return run.jobsPerSecond;
  };
  // Timed like Warren's drain: from before it subscribes until its last ack is seen.
  const plainQueue = async (loop: RunMonitor): Promise<number> => {
    await fill();
    let acked = 0;
    loop.start();
    const startedAt = performance.now();
    const embedder = await startPlainEmbedder(connection, queue, {
      inference,
      model: options.model,
      prefetch: options.prefetch,
      maxBatch: options.batchSize,
      onAcked: () => {
        acked += 1;
      },
    });
    try {
      await until(() => {
        if (embedder.failure !== undefined) throw embedder.failure;
        return acked >= sentences.length;
      });
    } finally {
      loop.stop();
      await embedder.stop();
    }
    const seconds = (performance.now() - startedAt) / 1000;
    await broker.purge(results);
    return sentences.length / seconds;
  };

  const variants: Array<[Variant, string, (loop: RunMonitor) => Promise<number>]> = [
    ['direct', 'b', (loop) => timed(loop, () => direct(inference))],
    ['batched', 'a', (loop) => warren(options.batchSize, loop)],
    ['unbatched', 'c', (loop) => warren(1, loop)],
    ['plainQueue', 'd', plainQueue],
    ['directOneThread', 'f', (loop) => timed(loop, () => direct(oneThread))],
    ['warrenOneThread', 'e', (loop) => warren(options.batchSize, loop, { intraOpThreads: 1 })],
    ['warrenSpinning', 'g', (loop) => warren(options.batchSize, loop, { allowSpinning: true })],
    ['unbatchedSpinning', 'h', (loop) => warren(1, loop, { allowSpinning: true })],
  ];
  const runs: InferenceResult['runs'] = [];
  const best = Object.fromEntries(variants.map(([name]) => [name, NO_RUN])) as Record<
    Variant,
    EmbedRun
  >;
  try {
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const [name, letter, run] of variants) {
        const loop = new RunMonitor();
        const sentencesPerSecond = await run(loop);
        runs.push({ run: letter, sentencesPerSecond });
        const measured = { sentencesPerSecond, ...loop.summary() };
        if (measured.sentencesPerSecond > best[name].sentencesPerSecond) best[name] = measured;
        log(`  ${name} round ${round}: ${sentencesPerSecond.toFixed(0)} sentences/s`);
      }
    }
  } finally {
    await connection.close();
    await oneThread.close();
    await spinning.close();
  }

  return {
    sentences: sentences.length,
    batchSize: options.batchSize,
    maxWaitMs: options.maxWaitMs,
    prefetch: options.prefetch,
    concurrency: options.concurrency,
    rounds: options.rounds,
    batchingAvailable: workerTakesBatch(),
    intraOpThreads,
    warrenBatched: best.batched,
    direct: best.direct,
    warrenUnbatched: best.unbatched,
    plainQueue: best.plainQueue,
    warrenOneThread: best.warrenOneThread,
    directOneThread: best.directOneThread,
    warrenSpinning: best.warrenSpinning,
    unbatchedSpinning: best.unbatchedSpinning,
    runs,
    modelLoadSeconds,
    resultBytes,
  };
}

/** The bench's LocalInference options: fp32 models from `modelPath`, never from the hub. */
export function localModels(modelPath: string, intraOpThreads?: number): LocalInferenceOptions {
  return {
    localModelPath: modelPath,
    allowRemoteModels: false,
    dtype: 'fp32',
    ...(intraOpThreads === undefined ? {} : { intraOpThreads }),
  };
}

/** Loads the model into `client`'s thread and runs it once. */
async function warmUp(client: LocalInference, model: string): Promise<void> {
  await client.featureExtraction({ model, inputs: ['warm up'], pooling: POOLING });
}

const NO_RUN: EmbedRun = {
  sentencesPerSecond: 0,
  loopDelayP99Ms: 0,
  loopDelayMaxMs: 0,
  ...NO_CPU_USE,
};

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
