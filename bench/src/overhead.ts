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
  /** Warren with a result per job (the jobs name a reply-to queue). */
  warrenReply: number;
  plainReply: number;
  /** Warren's jobs/s over each tenth of its best drain. */
  warrenTenths: number[];
  /** How long stopping the worker took after its best drain. */
  warrenStopSeconds: number;
  /** Every run, in the order they ran. */
  runs: Array<{ variant: string; jobsPerSecond: number; seconds: number }>;
}

/**
 * Measurement 1: the same pre-filled queue drained by Warren (no-op handler) and by an amqplib
 * consumer that only acks; then, with jobs that name a reply-to queue, by Warren publishing a
 * confirmed result per job and by an amqplib consumer that publishes a confirmed reply before
 * acking (the same broker work).
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
    /** Whether its jobs name the results queue as their reply-to. */
    reply: boolean;
    drain: () => Promise<{ jobsPerSecond: number; seconds: number }>;
  }> = [
    { name: 'plain-ack', reply: false, drain: () => plain('ack') },
    { name: 'warren', reply: false, drain: () => warren(true) },
    { name: 'plain-reply', reply: true, drain: () => plain('reply') },
    { name: 'warren-reply', reply: true, drain: () => warren(false) },
  ];
  function plain(mode: PlainMode) {
    return drainWithAmqplib(connection, queue, {
      prefetch: options.prefetch,
      mode,
      jobs: options.jobs,
    });
  }
  async function warren(best: boolean): Promise<DrainResult> {
    const run = await drainWithWarren(
      broker,
      { plugin: 'noop.js', prefetch: options.prefetch, modelPath: options.modelPath },
      options.jobs,
    );
    if (best && run.jobsPerSecond > warrenBest) {
      warrenBest = run.jobsPerSecond;
      warrenTenths = run.tenths;
      warrenStopSeconds = run.stopSeconds;
    }
    return run;
  }

  try {
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const variant of variants) {
        await broker.fill(
          MODEL_TYPE,
          options.jobs,
          () => input,
          variant.reply ? results : undefined,
        );
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
    warrenReply: best('warren-reply'),
    plainReply: best('plain-reply'),
    warrenTenths,
    warrenStopSeconds,
    runs,
  };
}
