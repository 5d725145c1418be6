import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AMQP_URL, BenchBroker } from './src/broker.ts';
import { renderChart } from './src/chart.ts';
import { type BenchReport, figuresOf } from './src/figures.ts';
import { measureInference } from './src/inference.ts';
import { measureLatency } from './src/latency.ts';
import { cpuTicks, describeMachine, stolenBetween } from './src/machine.ts';
import { measureMemory } from './src/memory.ts';
import { measureOverhead } from './src/overhead.ts';
import { profileNoopDrain } from './src/profile.ts';
import { renderMarkdown, renderTable } from './src/report.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHARED = join(REPO_ROOT, '..', 'shared');

const USAGE = `Usage: pnpm bench [--quick] [--write] [--models DIR] [--data FILE] [--out FILE.md]

Measures Warren against a baseline for each figure, prints a table, and writes the report
(default docs/benchmarks.md and docs/benchmarks.svg beside it).
  --quick    smaller counts and one round (about a minute), to check that the bench works; prints
             the table and writes nothing unless --write is given
  --write    with --quick: write the report too; needs --out, so that a quick run never replaces
             docs/benchmarks.md
  --out      the report's file (the chart goes beside it, .svg); default docs/benchmarks.md
  --models   folder holding use-lite-en (default ../shared/models)
  --data     STS Benchmark test file (default ../shared/data/sts-b/sts-test.csv)
RabbitMQ: AMQP_URL, default amqp://guest:guest@127.0.0.1:5672.`;

/** Counts per mode: the full run stays under about five minutes on two cores. */
const SIZES = {
  full: {
    // Long enough that start-up (declaring, subscribing, JIT warm-up) is a small share.
    overheadJobs: 30_000,
    // The machine's noise moves single drains by a third: best of five.
    overheadRounds: 5,
    sentences: undefined,
    inferenceRounds: 3,
    latencySeconds: 10,
    backlog: 100_000,
    memorySeconds: 10,
    heapJobs: 10_000,
    profileJobs: 10_000,
  },
  quick: {
    overheadJobs: 2_000,
    overheadRounds: 1,
    sentences: 640,
    inferenceRounds: 1,
    latencySeconds: 3,
    backlog: 10_000,
    memorySeconds: 3,
    heapJobs: 1_000,
    profileJobs: 0,
  },
} as const;

const PREFETCH = 50;
const BODY_BYTES = 100;
const MODEL = 'use-lite-en';
const BATCH_SIZE = 32;
const BATCH_WAIT_MS = 5;
const EMBED_PREFETCH = 64;
/** Two batches in flight: the next is tokenised while the model runs (docs/operating.md). */
const EMBED_CONCURRENCY = 2;

const OPTIONS = {
  quick: { type: 'boolean', default: false },
  write: { type: 'boolean', default: false },
  models: { type: 'string', default: join(SHARED, 'models') },
  data: { type: 'string', default: join(SHARED, 'data', 'sts-b', 'sts-test.csv') },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** A bad command line: says why and how to call it, and exits 2, as the worker binary does. */
function usageError(message: string): void {
  console.error(`warren bench: ${message}\n\n${USAGE}`);
  process.exitCode = 2;
}

async function main(): Promise<void> {
  let values: Options;
  try {
    ({ values } = parseArgs({ options: OPTIONS }));
  } catch (error) {
    return usageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.quick && values.write && values.out === undefined) {
    return usageError(
      '--quick --write needs --out: a quick run must not replace docs/benchmarks.md',
    );
  }
  // Absolute, so that the worker's config (resolved against its folder) names the same model
  // folder as this process's client and the two share one loaded model.
  const models = resolve(values.models);
  const data = resolve(values.data);
  const out = resolve(values.out ?? join(REPO_ROOT, 'docs', 'benchmarks.md'));
  const sizes = values.quick ? SIZES.quick : SIZES.full;
  const log = (line: string) => console.log(line);
  const startedAt = new Date();
  const clock = performance.now();
  const ticksAtStart = await cpuTicks();

  const broker = new BenchBroker();
  log(`warren bench: broker ${AMQP_URL.replace(/\/\/[^@]*@/, '//')}, prefix ${broker.prefix}`);
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    seconds: 0,
    quick: values.quick,
    machine: await describeMachine(),
  };
  try {
    log('1. runtime overhead');
    report.overhead = await measureOverhead(
      broker,
      {
        jobs: sizes.overheadJobs,
        prefetch: PREFETCH,
        bodyBytes: BODY_BYTES,
        rounds: sizes.overheadRounds,
        modelPath: models,
      },
      log,
    );

    log('2. inference throughput (and 5. event-loop delay)');
    const model = { dataFile: data, modelPath: models, model: MODEL };
    const batching = {
      batchSize: BATCH_SIZE,
      maxWaitMs: BATCH_WAIT_MS,
      prefetch: EMBED_PREFETCH,
      concurrency: EMBED_CONCURRENCY,
    };
    report.inference = await measureInference(
      broker,
      {
        ...model,
        ...batching,
        rounds: sizes.inferenceRounds,
        ...(sizes.sentences === undefined ? {} : { limit: sizes.sentences }),
      },
      log,
    );

    log('3. latency');
    const rate = Math.max(1, Math.round(report.inference.warrenBatched.sentencesPerSecond / 2));
    report.latency = await measureLatency(
      broker,
      { ...model, ...batching, rate, seconds: sizes.latencySeconds },
      log,
    );

    log('4. memory');
    report.memory = await measureMemory(
      broker,
      {
        ...model,
        backlog: sizes.backlog,
        prefetch: PREFETCH,
        bodyBytes: BODY_BYTES,
        seconds: sizes.memorySeconds,
        heapJobs: sizes.heapJobs,
      },
      log,
    );

    if (sizes.profileJobs > 0) {
      log('CPU profile of the no-op drain');
      report.profile = await profileNoopDrain(broker, {
        jobs: sizes.profileJobs,
        prefetch: PREFETCH,
        bodyBytes: BODY_BYTES,
        modelPath: models,
      });
    }
  } finally {
    await broker.cleanUp();
  }
  report.seconds = (performance.now() - clock) / 1000;
  const stolen = stolenBetween(ticksAtStart, await cpuTicks());
  if (stolen !== undefined) report.machine.stolen = stolen;

  const figures = figuresOf(report);
  log('');
  log(renderTable(figures));
  log('');
  if (values.quick && !values.write) {
    log(`quick run (${report.seconds.toFixed(0)} s): report not written; add --write to write it`);
    return;
  }
  const chartFile = `${out.replace(/\.md$/, '')}.svg`;
  await mkdir(dirname(out), { recursive: true });
  await writeFile(chartFile, renderChart(figures, 'Warren ÷ baseline, per figure'));
  await writeFile(out, renderMarkdown(report, figures, basename(chartFile)));
  log(`wrote ${out} and ${chartFile} (${report.seconds.toFixed(0)} s)`);
}

try {
  await main();
} catch (error) {
  console.error(
    `warren bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exitCode = 1;
}
