import { type BenchBroker, bodyBytes, paddedInput } from './broker.ts';
import { drainWithAmqplib, type PlainMode } from './plain-consumer.ts';
import { type DrainResult, drainWithWarren } from './warren-run.ts';

const MODEL_TYPE = 'bench-noop';

export interface OverheadOptions {
  jobs: number;
  prefetch: number;
  bodyBytes: number;
  /** Each variant runs this many times, interleaved; the best run of each is reported. */
  rounds: number;
  modelPath: string;
}

export interface OverheadResult {
  jobs: number;
  prefetch: number;
  bodyBytes: number;
  rounds: number;
  /** Best jobs/s of each variant. */
  warren: number;
  plainAck: number;
  plainReply: number;
  /** Warren's jobs/s over each tenth of its best drain. */
  warrenTenths: number[];
  /** How long stopping the worker took after its best drain. */
  warrenStopSeconds: number;
  /** Every run, in the order they ran. */
  runs: Array<{ variant: string; jobsPerSecond: number; seconds: number }>;
}

/**
 * Measurement 1: the same pre-filled queue drained by Warren (no-op handler, confirmed result
 * per job), by an amqplib consumer that only acks, and by one that also publishes a confirmed
 * reply before acking (the same broker work Warren does per job).
 */
export async function measureOverhead(
  broker: BenchBroker,
  options: OverheadOptions,
  log: (line: string) => void,
): Promise<OverheadResult> {
  const results = await broker.declare(MODEL_TYPE, 'noop-results');
  const queue = broker.topology(MODEL_TYPE).queue;
  const input = paddedInput(options.bodyBytes);
  const connection = await broker.connectPlain('warren-bench-plain');
  const runs: OverheadResult['runs'] = [];
  let warrenTenths: number[] = [];
  let warrenBest = 0;
  let warrenStopSeconds = 0;

  const variants: Array<{
    name: string;
    drain: () => Promise<{ jobsPerSecond: number; seconds: number }>;
  }> = [
    { name: 'plain-ack', drain: () => plain('ack') },
    { name: 'warren', drain: () => warren() },
    { name: 'plain-reply', drain: () => plain('reply') },
  ];
  function plain(mode: PlainMode) {
    return drainWithAmqplib(connection, queue, {
      prefetch: options.prefetch,
      mode,
      jobs: options.jobs,
    });
  }
  async function warren(): Promise<DrainResult> {
    const run = await drainWithWarren(
      broker,
      { plugin: 'noop', prefetch: options.prefetch, modelPath: options.modelPath },
      options.jobs,
    );
    if (run.jobsPerSecond > warrenBest) {
      warrenBest = run.jobsPerSecond;
      warrenTenths = run.tenths;
      warrenStopSeconds = run.stopSeconds;
    }
    return run;
  }

  try {
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const variant of variants) {
        await broker.fill(MODEL_TYPE, options.jobs, () => input, results);
        const run = await variant.drain();
        await broker.purge(results);
        runs.push({
          variant: variant.name,
          jobsPerSecond: run.jobsPerSecond,
          seconds: run.seconds,
        });
        log(`  ${variant.name} round ${round}: ${run.jobsPerSecond.toFixed(0)} jobs/s`);
      }
    }
  } finally {
    await connection.close();
  }

  const best = (name: string) =>
    Math.max(...runs.filter((run) => run.variant === name).map((run) => run.jobsPerSecond));
  return {
    jobs: options.jobs,
    prefetch: options.prefetch,
    bodyBytes: bodyBytes(input),
    rounds: options.rounds,
    warren: best('warren'),
    plainAck: best('plain-ack'),
    plainReply: best('plain-reply'),
    warrenTenths,
    warrenStopSeconds,
    runs,
  };
}
