import { formatNumber } from './format.ts';
import type { InferenceResult } from './inference.ts';
import type { LatencyResult } from './latency.ts';
import type { MachineInfo } from './machine.ts';
import type { MemoryResult } from './memory.ts';
import type { OverheadResult } from './overhead.ts';
import type { ProfileSummary } from './profile.ts';
import { ratio } from './stats.ts';

/** Everything one `pnpm bench` measured; the writers turn it into the table, page and chart. */
export interface BenchReport {
  startedAt: string;
  seconds: number;
  quick: boolean;
  machine: MachineInfo;
  overhead?: OverheadResult;
  inference?: InferenceResult;
  latency?: LatencyResult;
  memory?: MemoryResult;
  profile?: ProfileSummary;
}

/** One line of the summary: Warren beside its baseline, the ratio, and the target if any. */
export interface Figure {
  id: string;
  name: string;
  unit: string;
  warren: number;
  baseline: number;
  baselineName: string;
  /** Warren divided by the baseline. */
  ratio: number;
  /** Whether a larger value is better (throughput) or a smaller one (latency, memory). */
  better: 'higher' | 'lower';
  /** `ratio`, when the target is a ratio, is the threshold the chart marks. */
  target?: { text: string; met: boolean; ratio?: number };
}

const MIB_PER_MB = 1_000_000 / 1024 ** 2;

/** The summary lines of a report, in the order of the measurements. */
export function figuresOf(report: BenchReport): Figure[] {
  const figures: Figure[] = [];
  const { overhead, inference, latency, memory } = report;
  if (overhead) {
    figures.push(
      pair('1', 'Runtime: no-op jobs/s', 'jobs/s', overhead.warren, overhead.plainAck, {
        baselineName: 'amqplib consumer, ack only',
        target: ['≥ 0.95 × baseline', (r) => r >= 0.95, 0.95],
      }),
      pair(
        "1'",
        'Runtime: no-op jobs/s, confirmed result per job',
        'jobs/s',
        overhead.warrenReply,
        overhead.plainReply,
        {
          baselineName: 'amqplib consumer, confirmed reply then ack',
        },
      ),
    );
  }
  if (inference) {
    const { warrenBatched: a, direct: b, warrenUnbatched: c, plainQueue: d } = inference;
    const { warrenOneThread: e, directOneThread: f } = inference;
    const { warrenSpinning: g, unbatchedSpinning: h } = inference;
    figures.push(
      pair(
        '2 a/b',
        'Embeddings/s, batched',
        'sentences/s',
        a.sentencesPerSecond,
        b.sentencesPerSecond,
        {
          baselineName: `model called directly, batches of ${inference.batchSize}`,
          target: ['≥ 0.95 × baseline', (r) => r >= 0.95, 0.95],
        },
      ),
      pair(
        '2 a/c',
        'Embeddings/s, batched vs not',
        'sentences/s',
        a.sentencesPerSecond,
        c.sentencesPerSecond,
        {
          baselineName: 'Warren with batch maxSize 1',
          target: ['≥ 1.5 × baseline', (r) => r >= 1.5, 1.5],
        },
      ),
      pair(
        '2 a/d',
        'Embeddings/s, batched, vs a queue worker by hand',
        'sentences/s',
        a.sentencesPerSecond,
        d.sentencesPerSecond,
        { baselineName: `amqplib embedding worker, batches of ${inference.batchSize}` },
      ),
      pair(
        '2 e/f',
        'Embeddings/s, batched, model on one thread',
        'sentences/s',
        e.sentencesPerSecond,
        f.sentencesPerSecond,
        { baselineName: 'model called directly, one thread' },
      ),
      pair(
        '2 a/g',
        'Embeddings/s, batched, ONNX Runtime not spinning',
        'sentences/s',
        a.sentencesPerSecond,
        g.sentencesPerSecond,
        { baselineName: "Warren, its threads spinning (ONNX Runtime's default)" },
      ),
      pair(
        '2 c/h',
        'Embeddings/s, maxSize 1, ONNX Runtime not spinning',
        'sentences/s',
        c.sentencesPerSecond,
        h.sentencesPerSecond,
        { baselineName: "Warren, maxSize 1, its threads spinning (ONNX Runtime's default)" },
      ),
    );
  }
  if (latency) {
    const name = 'amqplib embedding worker';
    figures.push(
      pair('3 p50', 'Latency p50', 'ms', latency.warren.p50Ms, latency.plain.p50Ms, {
        baselineName: name,
        better: 'lower',
      }),
      pair('3 p99', 'Latency p99', 'ms', latency.warren.p99Ms, latency.plain.p99Ms, {
        baselineName: name,
        better: 'lower',
      }),
    );
  }
  if (memory) {
    const limitMiB = 200 * MIB_PER_MB;
    const target = (peakMiB: number): [string, () => boolean] => [
      '< 200 MB (190.7 MiB) + model',
      () => peakMiB < limitMiB,
    ];
    figures.push(
      pair(
        '4',
        `Peak RSS, ${memory.seconds} s into a ${formatNumber(memory.backlog)}-job backlog`,
        'MiB',
        memory.warren.peakRssMiB,
        memory.plain.peakRssMiB,
        {
          baselineName: 'amqplib consumer process',
          better: 'lower',
          target: target(memory.warren.peakRssMiB),
        },
      ),
      pair(
        "4'",
        `Peak RSS, ${memory.seconds} s into a ${formatNumber(memory.backlog)}-job backlog, ` +
          `node ${memory.flags.join(' ')}`,
        'MiB',
        memory.warrenTuned.peakRssMiB,
        memory.plain.peakRssMiB,
        {
          baselineName: 'amqplib consumer process',
          better: 'lower',
          target: target(memory.warrenTuned.peakRssMiB),
        },
      ),
    );
  }
  if (inference) {
    figures.push(
      pair(
        '5',
        'Event-loop delay p99, batched',
        'ms',
        inference.warrenBatched.loopDelayP99Ms,
        inference.direct.loopDelayP99Ms,
        {
          baselineName: 'model called directly',
          better: 'lower',
          target: ['< 50 ms', () => inference.warrenBatched.loopDelayP99Ms < 50],
        },
      ),
    );
  }
  return figures;
}

function pair(
  id: string,
  name: string,
  unit: string,
  warren: number,
  baseline: number,
  options: {
    baselineName: string;
    better?: 'higher' | 'lower';
    target?: [string, (ratio: number) => boolean, number?];
  },
): Figure {
  const r = ratio(warren, baseline);
  const figure: Figure = {
    id,
    name,
    unit,
    warren,
    baseline,
    baselineName: options.baselineName,
    ratio: r,
    better: options.better ?? 'higher',
  };
  if (options.target) {
    const [text, check, threshold] = options.target;
    figure.target = {
      text,
      met: check(r),
      ...(threshold === undefined ? {} : { ratio: threshold }),
    };
  }
  return figure;
}
