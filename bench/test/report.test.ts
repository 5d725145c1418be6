import { describe, expect, it } from 'vitest';
import { BenchBroker } from '../src/broker.ts';
import { renderChart } from '../src/chart.ts';
import { type BenchReport, figuresOf } from '../src/figures.ts';
import { cpuTicks, parseCpuTicks, stolenBetween } from '../src/machine.ts';
import { renderMarkdown, renderTable } from '../src/report.ts';
import { percentile } from '../src/stats.ts';
import { type WorkerSetup, workerConfig } from '../src/warren-run.ts';

/** A report with fixed numbers: nothing here is timed. */
const REPORT: BenchReport = {
  startedAt: '2026-01-01T00:00:00.000Z',
  seconds: 200,
  quick: false,
  machine: {
    cpu: 'Test CPU <model> & co',
    cores: 2,
    memoryGiB: 23.5,
    node: 'v20.20.2',
    rabbitmq: '3.10.8',
    os: 'linux 6.1',
    loadAtStart: 0.12,
    stolen: 0.25,
  },
  overhead: {
    jobs: 10_000,
    prefetch: 50,
    bodyBytes: 100,
    rounds: 2,
    warren: 1_000,
    plainAck: 10_000,
    warrenReply: 800,
    plainReply: 5_000,
    warrenTenths: [2_000, 1_500, 1_200, 1_000, 900, 800, 700, 650, 600, 500],
    warrenStopSeconds: 12,
    runs: [
      { variant: 'plain-ack', jobsPerSecond: 10_000, seconds: 1 },
      { variant: 'warren', jobsPerSecond: 1_000, seconds: 10 },
      { variant: 'plain-reply', jobsPerSecond: 5_000, seconds: 2 },
      { variant: 'warren-reply', jobsPerSecond: 800, seconds: 12.5 },
    ],
  },
  inference: {
    sentences: 2_758,
    batchSize: 32,
    maxWaitMs: 5,
    prefetch: 64,
    concurrency: 2,
    rounds: 2,
    batchingAvailable: true,
    intraOpThreads: 2,
    warrenBatched: {
      sentencesPerSecond: 1_000,
      loopDelayP99Ms: 60,
      loopDelayMaxMs: 80,
      processSeconds: 4,
      mainThreadSeconds: 1,
      brokerSeconds: 1.5,
    },
    direct: {
      sentencesPerSecond: 1_100,
      loopDelayP99Ms: 55,
      loopDelayMaxMs: 57,
      processSeconds: 4,
      mainThreadSeconds: 0.4,
      brokerSeconds: 0.1,
    },
    warrenUnbatched: {
      sentencesPerSecond: 400,
      loopDelayP99Ms: 20,
      loopDelayMaxMs: 30,
      processSeconds: 9,
      mainThreadSeconds: 3,
      brokerSeconds: 2,
    },
    plainQueue: {
      sentencesPerSecond: 900,
      loopDelayP99Ms: 40,
      loopDelayMaxMs: 45,
      processSeconds: 4.5,
      mainThreadSeconds: 1.2,
      brokerSeconds: 1.6,
    },
    warrenOneThread: {
      sentencesPerSecond: 600,
      loopDelayP99Ms: 30,
      loopDelayMaxMs: 35,
      processSeconds: 4,
      mainThreadSeconds: 1,
      brokerSeconds: 1.5,
    },
    directOneThread: {
      sentencesPerSecond: 610,
      loopDelayP99Ms: 25,
      loopDelayMaxMs: 28,
      processSeconds: 3.5,
      mainThreadSeconds: 0.4,
      brokerSeconds: 0.1,
    },
    warrenSpinning: {
      sentencesPerSecond: 950,
      loopDelayP99Ms: 50,
      loopDelayMaxMs: 52,
      processSeconds: 4.6,
      mainThreadSeconds: 0.45,
      brokerSeconds: 0.5,
    },
    unbatchedSpinning: {
      sentencesPerSecond: 360,
      loopDelayP99Ms: 22,
      loopDelayMaxMs: 31,
      processSeconds: 11,
      mainThreadSeconds: 3.1,
      brokerSeconds: 2.1,
    },
    runs: [
      { run: 'b', sentencesPerSecond: 1_100 },
      { run: 'a', sentencesPerSecond: 1_000 },
      { run: 'g', sentencesPerSecond: 950 },
      { run: 'b', sentencesPerSecond: 1_050 },
      { run: 'a', sentencesPerSecond: 990 },
      { run: 'g', sentencesPerSecond: 940 },
    ],
    modelLoadSeconds: 0.2,
    resultBytes: 10_000,
  },
  latency: {
    rate: 500,
    seconds: 10,
    warren: { published: 5_000, received: 5_000, p50Ms: 30, p99Ms: 80, maxMs: 120 },
    plain: { published: 5_000, received: 5_000, p50Ms: 60, p99Ms: 140, maxMs: 200 },
  },
  memory: {
    backlog: 100_000,
    prefetch: 50,
    seconds: 10,
    warren: { peakRssMiB: 400, startRssMiB: 300, endRssMiB: 390, drained: 5_000 },
    warrenTuned: { peakRssMiB: 150, startRssMiB: 110, endRssMiB: 140, drained: 3_000 },
    flags: ['--max-old-space-size=512'],
    plain: { peakRssMiB: 90, startRssMiB: 86, endRssMiB: 88, drained: 100_000 },
    model: { beforeMiB: 255, peakMiB: 330, costMiB: 75 },
    loader: { nodeMiB: 40, tsxMiB: 72 },
    heap: { jobs: 10_000, bytesPerJob: { memoryDedupe: 500, noDedupe: 350 } },
  },
  profile: {
    jobs: 10_000,
    jobsPerSecond: 800,
    busyMs: 12_000,
    profilerMs: 500,
    byPackage: [{ name: 'xstate', ms: 9_000, share: 0.75 }],
    topFunctions: [
      { name: 'resolveSpawn (xstate:1225)', ms: 4_000, share: 0.33 },
      { name: 'resolveStop (xstate:1296)', ms: 4_000, share: 0.33 },
    ],
  },
};

/** Tags opened and closed in order; throws on a stray or unclosed one. */
function checkNesting(svg: string): void {
  const open: string[] = [];
  for (const match of svg.matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match;
    if (selfClosing) continue;
    if (closing) {
      const last = open.pop();
      if (last !== name) throw new Error(`</${name}> closes <${last}>`);
    } else open.push(name!);
  }
  if (open.length > 0) throw new Error(`unclosed: ${open.join(', ')}`);
}

describe('the bench report writers', () => {
  const figures = figuresOf(REPORT);

  it('puts every measured figure beside its baseline with the ratio and the target verdict', () => {
    expect(figures.map((f) => f.id)).toEqual([
      '1',
      "1'",
      '2 a/b',
      '2 a/c',
      '2 a/d',
      '2 e/f',
      '2 a/g',
      '2 c/h',
      '3 p50',
      '3 p99',
      '4',
      "4'",
      '5',
    ]);
    const runtime = figures[0]!;
    expect(runtime.ratio).toBeCloseTo(0.1);
    expect(runtime.target).toMatchObject({ met: false, ratio: 0.95 });
    expect(figures.find((f) => f.id === '2 a/c')!.target!.met).toBe(true);
    expect(figures.find((f) => f.id === '5')!.target!.met).toBe(false);
    // The memory target is judged on the worker as it starts by default, and with the flags.
    expect(figures.find((f) => f.id === '4')!.target!.met).toBe(false);
    expect(figures.find((f) => f.id === "4'")!.target!.met).toBe(true);
    // Each figure of 2 pairs the runs its letters name (rates 1,000 to 360, all different).
    const pairs = Object.fromEntries(
      figures.filter((f) => f.id.startsWith('2 ')).map((f) => [f.id, [f.warren, f.baseline]]),
    );
    expect(pairs).toEqual({
      '2 a/b': [1_000, 1_100],
      '2 a/c': [1_000, 400],
      '2 a/d': [1_000, 900],
      '2 e/f': [600, 610],
      '2 a/g': [1_000, 950],
      '2 c/h': [400, 360],
    });
  });

  it("gives a bench worker's config the model settings of its run", () => {
    const broker = new BenchBroker();
    const local = (setup: Partial<WorkerSetup>) =>
      (
        workerConfig(broker, {
          plugin: 'embed.ts',
          prefetch: 8,
          modelPath: '/models',
          ...setup,
        }) as {
          inference: { local: Record<string, unknown> };
        }
      ).inference.local;
    expect(local({})).toEqual({ modelPath: '/models', allowRemoteModels: false });
    expect(local({ allowSpinning: true, intraOpThreads: 1 })).toMatchObject({
      allowSpinning: true,
      intraOpThreads: 1,
    });
  });

  it('writes an SVG chart that is well-formed XML with one bar per finite ratio', () => {
    const svg = renderChart(figures, 'Warren & baselines');

    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(() => checkNesting(svg)).not.toThrow();
    expect(svg).toContain('Warren &amp; baselines');
    expect(svg).not.toMatch(/&(?!amp;|lt;|gt;|quot;)/);
    expect(svg.match(/<rect class="bar"/g)).toHaveLength(figures.length);
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  });

  it('writes markdown with the machine, a summary row per figure, the chart and the missed targets', () => {
    const markdown = renderMarkdown(REPORT, figures, 'benchmarks.svg');

    expect(markdown).toMatch(/^# Benchmarks\n/);
    expect(markdown).toContain('| CPU | Test CPU <model> & co |');
    expect(markdown).toContain('| RabbitMQ | 3.10.8');
    expect(markdown).toContain('| CPU time stolen during the run | 25% of all cores');
    expect(markdown).toContain('![Warren ÷ baseline for each figure](benchmarks.svg)');
    const summaryRows = markdown.split('## Summary')[1]!.split('\n\n')[1]!.split('\n');
    expect(summaryRows).toHaveLength(2 + figures.length);
    for (const row of summaryRows) expect(row.split('|')).toHaveLength(8);
    expect(markdown).toContain('**1, runtime:**');
    expect(markdown).toContain('**4, memory:**');
    expect(markdown).toContain('a process that runs nothing holds 40 MiB, 72 MiB once tsx');
    expect(markdown).toContain('**5, event-loop delay:**');
    expect(markdown).not.toContain('**2 a/c');
    // 2 a/b is missed (1,000 vs 1,100): the runs beside it say how much of that is the queue's.
    expect(markdown).toContain('**2 a/b, batched inference:**');
    expect(markdown).toContain('| (d) amqplib embedding worker | 900 |');
    expect(markdown).toContain('| (e) Warren, batched, one model thread | 600 |');
    expect(markdown).toContain('| (f) model called directly, one thread | 25 ms | 28 ms |');
    expect(markdown).toContain('| (g) Warren, batched, model threads spinning | 950 |');
    expect(markdown).toContain(
      'All runs (sentences/s): b 1,100; a 1,000; g 950; b 1,050; a 990; g 940.',
    );
    expect(markdown).toContain('| (h) Warren, maxSize 1, model threads spinning | 22 ms | 31 ms |');
    expect(markdown).toContain('concurrency 2');
    expect(markdown).toContain('2 call(s) in flight');
    expect(markdown).toContain(
      'In the order b, a, c, d, f, e, g, h, each runs 2 times, interleaved; the best run of each',
    );
    expect(markdown).toContain('acks each message on its own');
    expect(markdown).not.toContain('A quick run');
    expect(markdown).not.toMatch(/NaN|undefined/);
  });

  describe('what limits batched inference (2 a/b)', () => {
    /** The 2 a/b paragraph of a report whose runs (d), (e) and (f) reached these rates. */
    function paragraph(d: number, e: number, f: number): string {
      const inference = REPORT.inference!;
      const rate = (run: typeof inference.direct, sentencesPerSecond: number) => ({
        ...run,
        sentencesPerSecond,
      });
      const report: BenchReport = {
        ...REPORT,
        inference: {
          ...inference,
          plainQueue: rate(inference.plainQueue, d),
          warrenOneThread: rate(inference.warrenOneThread, e),
          directOneThread: rate(inference.directOneThread, f),
        },
      };
      const markdown = renderMarkdown(report, figuresOf(report), 'benchmarks.svg');
      return markdown.split('**2 a/b, batched inference:**')[1]!.split('\n')[0]!;
    }

    // Warren 1,000 sentences/s, the direct calls 1,100 in every case below.
    it('says the gap is the queue when a worker by hand loses as much or more', () => {
      const text = paragraph(900, 600, 610);
      expect(text).toContain(
        '(d) reached 900 sentences/s (0.82× the direct calls; Warren 1.11× it)',
      );
      expect(text).toContain('loses as much to the direct calls as Warren or more');
      expect(text).toContain('Warren reached 600 sentences/s and the direct calls 610 (0.98×)');
      expect(text).toContain('at least the 0.95 the target asks');
    });

    it("splits the gap when the worker by hand loses part of Warren's", () => {
      // Loses 80 of Warren's 100.
      expect(paragraph(1_020, 600, 700)).toContain(
        "it loses 80% of what Warren loses, so most of the gap is what taking jobs and publishing results costs any queue worker on this machine; the rest is Warren's own.",
      );
      // Loses 50 of Warren's 100: Warren's own share is the larger.
      const half = paragraph(1_050, 600, 700);
      expect(half).toContain("it loses 50% of what Warren loses; the rest is Warren's own.");
      expect(half).not.toContain('most of the gap');
      // One model thread: 600 vs 700 is below the target's ratio, and nothing more is claimed.
      expect(half).toContain('the direct calls 700 (0.86×).');
      expect(half).not.toContain('at least the 0.95');
    });

    it('claims nothing about the queue when the worker by hand beats the direct calls', () => {
      const text = paragraph(1_200, 600, 610);
      expect(text).toContain(
        '(d) reached 1,200 sentences/s (1.09× the direct calls; Warren 0.83× it).',
      );
      expect(text).not.toMatch(/loses|most of the gap/);
    });

    it('caps (a) by what RabbitMQ alone used, only when the cores were all busy', () => {
      // (a): 5.5 s of CPU over 2.758 s on 2 cores; RabbitMQ 1.5 s of it, the direct calls 4.1 s.
      expect(paragraph(900, 600, 610)).toContain(
        'RabbitMQ alone used 0.54 ms of CPU per sentence in (a), 37% of the 1.49 ms the direct ' +
          'calls used: on cores that are all busy, that caps (a) at about 0.73× (b) before any ' +
          "of the worker's own work is counted.",
      );
      const inference = REPORT.inference!;
      const idle: BenchReport = {
        ...REPORT,
        inference: {
          ...inference,
          warrenBatched: { ...inference.warrenBatched, processSeconds: 1 },
        },
      };
      const markdown = renderMarkdown(idle, figuresOf(idle), 'benchmarks.svg');
      expect(markdown).toContain('so the cores were not saturated');
      expect(markdown).not.toContain('RabbitMQ alone used');
    });

    it('leaves the runs out when they did not happen', () => {
      const text = paragraph(0, 600, 610);
      expect(text).not.toContain('(d) reached');
      expect(text).not.toContain('one thread');
      expect(text).not.toMatch(/NaN|Infinity|undefined/);
    });
  });

  it('warns when the machine was busy as the bench started, and marks a quick run', () => {
    const idle = renderMarkdown(REPORT, figures, 'benchmarks.svg');
    expect(idle).toContain('| load average as it started | 0.12 (1 minute) |');

    const busy = { ...REPORT, quick: true, machine: { ...REPORT.machine, loadAtStart: 1.5 } };
    const markdown = renderMarkdown(busy, figuresOf(busy), 'benchmarks.svg');
    expect(markdown).toContain(
      '| load average as it started | 1.50 (1 minute): other processes were using the CPU',
    );
    expect(markdown).toContain('**A quick run:**');
  });

  it('prints a table whose lines line up', () => {
    const lines = renderTable(figures).split('\n');

    expect(lines).toHaveLength(2 + figures.length);
    expect(lines[2]).toContain('0.10×');
    expect(lines[2]).toContain('MISSED');
  });

  it('takes percentiles by nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('steal time', () => {
  it('is the share of all CPU time the hypervisor took between two readings', () => {
    expect(stolenBetween({ total: 1_000, steal: 10 }, { total: 1_400, steal: 110 })).toBe(0.25);
    expect(stolenBetween(undefined, { total: 1_400, steal: 110 })).toBeUndefined();
    expect(stolenBetween({ total: 1_000, steal: 10 }, { total: 1_000, steal: 10 })).toBeUndefined();
  });

  it('takes steal from the eighth column of the cpu line, and leaves guest time out', () => {
    const stat = 'cpu  302705 0 37780 493591 12106 0 7472 34197 500 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n';
    expect(parseCpuTicks(stat)).toEqual({
      total: 302705 + 37780 + 493591 + 12106 + 7472 + 34197,
      steal: 34197,
    });
    expect(parseCpuTicks('intr 1 2 3\n')).toBeUndefined();
  });

  it('reads the counters of this machine', async () => {
    const ticks = await cpuTicks();
    expect(ticks!.total).toBeGreaterThan(ticks!.steal);
  });
});
