import { DEFAULT_DEDUPE_MAX_ENTRIES } from '@warren/core';
import type { BenchReport, Figure } from './figures.ts';
import { formatNumber, formatPercent } from './format.ts';
import type { EmbedRun, InferenceResult } from './inference.ts';
import { limitsOf } from './limits.ts';

/** The summary as a fixed-width text table for the terminal. */
export function renderTable(figures: readonly Figure[]): string {
  const header = ['#', 'figure', 'Warren', 'baseline', 'ratio', 'target', ''];
  const rows = figures.map((figure) => [
    figure.id,
    figure.name,
    `${formatNumber(figure.warren)} ${figure.unit}`,
    `${formatNumber(figure.baseline)} ${figure.unit}`,
    `${formatNumber(figure.ratio, 2)}×`,
    figure.target?.text ?? '',
    verdict(figure),
  ]);
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column >= 2 && column <= 4 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!),
      )
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function verdict(figure: Figure): string {
  if (figure.target === undefined) return '';
  return figure.target.met ? 'met' : 'MISSED';
}

/** The whole of docs/benchmarks.md. `chartFile` is the SVG's path relative to the page. */
export function renderMarkdown(
  report: BenchReport,
  figures: readonly Figure[],
  chartFile: string,
): string {
  const sections = [
    header(report),
    machine(report),
    summary(figures, chartFile),
    measured(report),
    limits(report, figures),
    profile(report),
  ];
  return `${sections.filter((section) => section !== '').join('\n\n')}\n`;
}

function header(report: BenchReport): string {
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`pnpm bench\`${report.quick ? ' --quick' : ''} on ${report.startedAt} ` +
      `(${formatNumber(report.seconds, 0)} s); do not edit by hand, run it again. Every figure ` +
      'puts Warren beside a baseline measured in the same run, one after the other, on the same ' +
      'broker, and gives the ratio Warren ÷ baseline. These are measurements, not tests: nothing ' +
      'here passes or fails.',
  ];
  if (report.quick) {
    lines.push(
      '',
      '**A quick run:** small counts and one round each, to check that the bench works. ' +
        'Start-up is a large share of each drain and single runs move a lot, so these figures ' +
        'are not comparable with a full run and say nothing about the targets.',
    );
  }
  return lines.join('\n');
}

function machine(report: BenchReport): string {
  const m = report.machine;
  return [
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    `| CPU | ${m.cpu} |`,
    `| cores | ${m.cores} |`,
    `| memory | ${formatNumber(m.memoryGiB, 1)} GiB |`,
    `| OS | ${m.os} |`,
    `| Node.js | ${m.node} |`,
    `| RabbitMQ | ${m.rabbitmq} (on the same machine, over loopback) |`,
    `| load average as it started | ${load(m.loadAtStart, m.cores)} |`,
    `| CPU time stolen during the run | ${stolen(m.stolen)} |`,
  ].join('\n');
}

/** The 1-minute load average before the bench's own work, with a warning if others ran. */
function load(average: number, cores: number): string {
  const text = `${formatNumber(average, 2)} (1 minute)`;
  return average < 0.25 * cores
    ? text
    : `${text}: other processes were using the CPU as it started, and may have slowed any ` +
        'run unevenly; run it again on an idle machine before comparing';
}

/**
 * Steal time: a virtual machine's CPUs were running something else of the host's. It slows
 * Warren and its baselines alike, but unevenly within a run, so absolute figures move between
 * runs more than the ratios do.
 */
function stolen(share: number | undefined): string {
  if (share === undefined) return 'unknown (no /proc/stat)';
  const percent = `${formatPercent(share)} of all cores' time (steal, /proc/stat)`;
  return share < 0.02
    ? percent
    : `${percent}: the host gave this VM's CPUs to other work, which slows every figure unevenly; compare ratios, not absolute figures, across runs`;
}

function summary(figures: readonly Figure[], chartFile: string): string {
  const rows = figures.map(
    (f) =>
      `| ${f.id} | ${f.name} | ${formatNumber(f.warren)} ${f.unit} | ` +
      `${formatNumber(f.baseline)} ${f.unit} (${f.baselineName}) | ${formatNumber(f.ratio, 2)}× | ` +
      `${f.target ? `${f.target.text}: ${f.target.met ? 'met' : '**missed**'}` : ''} |`,
  );
  return [
    '## Summary',
    '',
    '| # | figure | Warren | baseline | ratio | target |',
    '|---|---|---:|---:|---:|---|',
    ...rows,
    '',
    'For throughput a ratio above 1 favours Warren; for latency, memory and loop delay one ' +
      'below 1 does. The letters in 2 name the runs described under "2. Inference throughput".',
    '',
    `![Warren ÷ baseline for each figure](${chartFile})`,
  ].join('\n');
}

function measured(report: BenchReport): string {
  const parts = ['## How each figure was measured'];
  const { overhead, inference, latency, memory } = report;
  if (overhead) {
    const tenths = overhead.warrenTenths.map((rate) => formatNumber(rate)).join(', ');
    parts.push(
      [
        '### 1. Runtime overhead',
        '',
        `${formatNumber(overhead.jobs)} jobs with a ${overhead.bodyBytes}-byte JSON body are ` +
          'published (confirmed) into the quorum queue Warren declares; then one consumer drains ' +
          `them with prefetch ${overhead.prefetch}, timed from before it subscribes to the last ` +
          'job settled. The queue is filled again before each drain. Warren runs in this process ' +
          '(`Worker.start`, transport connected and plugin imported beforehand) with a no-op ' +
          'handler (`bench/plugins/noop.js`, `results: reply-to-only`) and default worker ' +
          'settings (concurrency 1, in-memory dedupe); it acks the jobs one turn of the event ' +
          'loop settled with one `basic.ack` (`multiple`) where their tags allow. Its baseline ' +
          '(the target compares with it) is a consumer written on amqplib that acks each ' +
          'message on its own, as it arrives. Then the same with jobs that ' +
          'name a reply-to queue: Warren publishes a confirmed result per job before it acks ' +
          '(`warren-reply`), and an amqplib consumer publishes a small reply, waits for its ' +
          `confirm and acks (\`plain-reply\`). Each runs ${runsOf(overhead.rounds)}.`,
        '',
        `All runs (jobs/s): ${overhead.runs.map((run) => `${run.variant} ${formatNumber(run.jobsPerSecond)}`).join('; ')}.`,
        '',
        `Warren's rate over each tenth of its best drain (jobs/s): ${tenths}. Stopping the ` +
          `worker afterwards (\`Worker.stop()\`, not timed in the figure) took ` +
          `${formatNumber(overhead.warrenStopSeconds, 2)} s.`,
      ].join('\n'),
    );
  }
  if (inference) {
    parts.push(
      [
        '### 2. Inference throughput',
        '',
        `The ${formatNumber(inference.sentences)} sentences of the STS Benchmark test set (both ` +
          'of each pair) embedded with use-lite-en (fp32, `cls` pooling, normalised; ' +
          '`LocalInference` from the local folder, remote loading off). (a) Warren, in this ' +
          `process, drains a queue pre-filled with one job per sentence, prefetch ${inference.prefetch}, ` +
          `batch maxSize ${inference.batchSize}, maxWaitMs ${inference.maxWaitMs}, concurrency ` +
          `${inference.concurrency}, with \`bench/plugins/embed.ts\` (\`handleBatch\` makes one ` +
          '`featureExtraction` call per batch). ' +
          `(b) \`LocalInference.featureExtraction\` called directly with ${inference.batchSize} ` +
          `sentences per call, ${inference.concurrency} call(s) in flight, no broker. (c) as (a) ` +
          'with batch maxSize 1 (`handle`, one call per job). (d) the embedding worker of ' +
          'figure 3, written on ' +
          'amqplib, drains the same queue (same prefetch, batches of up to ' +
          `${inference.batchSize}), timed from before it subscribes to its last ack. In (a) to (d) ` +
          `ONNX Runtime runs each batch on ${inference.intraOpThreads} thread(s) ` +
          "(LocalInference's default on this machine); (e) as (a) and (f) as (b) with one thread, " +
          'which leaves a core to the event loop and the broker. In (a) to (f) the threads of a ' +
          "run wait for the next without spinning (LocalInference's default, `allowSpinning` " +
          "false); (g) as (a) and (h) as (c) let them spin, ONNX Runtime's own default. " +
          'The model is loaded once per setting and warm before any timing (the first ' +
          `load took ${formatNumber(inference.modelLoadSeconds, 2)} s). Each result is a ` +
          `${formatNumber(inference.resultBytes)}-byte JSON vector that Warren publishes with a confirm. ` +
          `In the order b, a, c, d, f, e, g, h, each runs ${runsOf(inference.rounds)}.`,
        '',
        `All runs (sentences/s): ${inference.runs.map((run) => `${run.run} ${formatNumber(run.sentencesPerSecond)}`).join('; ')}.`,
        '',
        'CPU time of the best run of each, from `process.cpuUsage()` (this process, all ' +
          'threads), /proc/self/task/<pid>/stat (its main thread: the event loop; the rest is ' +
          "the model's threads, and V8's and libuv's helper threads) and /proc/<pid>/stat of " +
          "RabbitMQ's `beam.smp` on this machine:",
        '',
        '| run | sentences/s | this process | of which main thread | RabbitMQ | ' +
          'CPU ms per sentence, process and RabbitMQ |',
        '|---|---:|---:|---:|---:|---:|',
        ...embedRuns(inference).map(
          ([name, run]) =>
            `| ${name} | ${formatNumber(run.sentencesPerSecond)} | ` +
            `${formatNumber(run.processSeconds, 2)} s | ${formatNumber(run.mainThreadSeconds, 2)} s | ` +
            `${formatNumber(run.brokerSeconds, 2)} s | ` +
            `${formatNumber(cpuPerSentenceMs(run, inference.sentences), 2)} |`,
        ),
        '',
        inference.batchingAvailable
          ? "This build's worker config takes `batch` overrides, so (a) and (c) differ only in batching."
          : "**This build's worker config has no `batch` override, so (a) and (c) ran the same way.**",
      ].join('\n'),
    );
  }
  if (latency) {
    parts.push(
      [
        '### 3. Latency',
        '',
        `Jobs (STS-B sentences, in order) published open-loop at ${formatNumber(latency.rate)} jobs/s, ` +
          'half the best rate of 2(a), for ' +
          `${formatNumber(latency.seconds)} s, each with a reply-to queue; latency runs from the ` +
          'moment a job was due to be published (not when the publisher got to it, so that a ' +
          'stalled publisher cannot hide queueing) to the arrival of its result, by ' +
          '`performance.now()` in this process. Warren: the batched worker of 2(a), in this ' +
          'process. Baseline: an embedding worker written on amqplib (`bench/src/plain-embedder.ts`): ' +
          'whenever the model is idle it embeds all waiting messages (up to the same batch size) ' +
          'in one call, publishes each result and acks its job when the broker confirms it, ' +
          'without holding up the next batch; same queue, same prefetch.',
        '',
        '| | published | results | p50 | p99 | max |',
        '|---|---:|---:|---:|---:|---:|',
        ...(
          [
            ['Warren', latency.warren],
            ['amqplib worker', latency.plain],
          ] as const
        ).map(
          ([name, run]) =>
            `| ${name} | ${run.published} | ${run.received} | ${formatNumber(run.p50Ms)} ms | ` +
            `${formatNumber(run.p99Ms)} ms | ${formatNumber(run.maxMs)} ms |`,
        ),
      ].join('\n'),
    );
  }
  if (memory) {
    const total = memory.warren.peakRssMiB + memory.model.costMiB;
    parts.push(
      [
        '### 4. Memory',
        '',
        `The worker binary (\`node apps/worker/bin/warren-worker.js --config …\`, no-op plugin, ` +
          `prefetch ${memory.prefetch}) starts on a queue holding ${formatNumber(memory.backlog)} ` +
          `small jobs and drains it for ${memory.seconds} s while its VmRSS and VmHWM (peak) are ` +
          'read from /proc every 100 ms; then it gets SIGTERM. The queue is topped up to the same ' +
          `backlog and the same is done with the worker started as \`node ${memory.flags.join(' ')}\` ` +
          '(docs/operating.md: a heap limit, as a container should set; compare the jobs each drained), then ' +
          'with a plain amqplib consumer process (prefetch the same, ack only). The model is ' +
          'measured alone: a process imports `@warren/inference`, reads its RSS, loads ' +
          'use-lite-en and embeds 32 sentences, and reads its peak.',
        '',
        '| process | start RSS | end RSS | peak RSS | jobs drained |',
        '|---|---:|---:|---:|---:|',
        ...(
          [
            ['Warren worker', memory.warren],
            [`Warren worker, node ${memory.flags.join(' ')}`, memory.warrenTuned],
            ['amqplib consumer', memory.plain],
          ] as const
        ).map(
          ([name, m]) =>
            `| ${name} | ${formatNumber(m.startRssMiB)} MiB | ${formatNumber(m.endRssMiB)} MiB | ` +
            `${formatNumber(m.peakRssMiB)} MiB | ${formatNumber(m.drained)} |`,
        ),
        '',
        `The model adds ${formatNumber(memory.model.costMiB)} MiB (RSS ${formatNumber(memory.model.beforeMiB)} MiB ` +
          `before loading, peak ${formatNumber(memory.model.peakMiB)} MiB after), so a worker ` +
          `serving it would peak near ${formatNumber(total)} MiB.`,
        '',
        `For scale, a Node process that runs nothing holds ${formatNumber(memory.loader.nodeMiB)} ` +
          `MiB half a second after it starts, and ${formatNumber(memory.loader.tsxMiB)} MiB when ` +
          'started with `--import tsx`. The worker binary runs compiled JavaScript (`dist/`, from ' +
          '`pnpm build`) and the no-op plugin is JavaScript, so it runs without tsx, as does the ' +
          'amqplib consumer; a plugin written in TypeScript has tsx registered when it is loaded.',
        '',
        'Live heap kept per job: a worker in a process of its own (`node --expose-gc`, same ' +
          `plugin and prefetch) drains ${formatNumber(memory.heap.jobs)} jobs to warm up, then ` +
          `${formatNumber(memory.heap.jobs)} more, and reads \`heapUsed\` after a forced ` +
          'collection at both points. It grew by ' +
          `${formatNumber(memory.heap.bytesPerJob.memoryDedupe)} bytes per job with the default ` +
          `in-memory dedupe store (which keeps up to ${formatNumber(DEFAULT_DEDUPE_MAX_ENTRIES)} ` +
          `finished job ids) and ${formatNumber(memory.heap.bytesPerJob.noDedupe)} bytes per job ` +
          'with dedupe off.',
      ].join('\n'),
    );
  }
  if (inference) {
    const rows = embedRuns(inference).map(
      ([name, run]) =>
        `| ${name} | ${formatNumber(run.loopDelayP99Ms)} ms | ${formatNumber(run.loopDelayMaxMs)} ms |`,
    );
    parts.push(
      [
        '### 5. Event-loop delay',
        '',
        '`perf_hooks.monitorEventLoopDelay` (10 ms resolution) runs in the process during each ' +
          'run of 2; the figures are from the best run of each.',
        '',
        '| run | p99 | max |',
        '|---|---:|---:|',
        ...rows,
      ].join('\n'),
    );
  }
  return parts.join('\n\n');
}

function limits(report: BenchReport, figures: readonly Figure[]): string {
  const lines = limitsOf(report, figures);
  if (lines.length === 0) return '## Targets\n\nEvery target was met in this run.';
  return ['## Targets missed, and what limits them', '', ...lines.map((line) => `- ${line}`)].join(
    '\n',
  );
}

function profile(report: BenchReport): string {
  const p = report.profile;
  if (p === undefined) return '';
  const table = (rows: ProfileRows) => [
    '| | self time | share |',
    '|---|---:|---:|',
    ...rows.map(
      (row) => `| \`${row.name}\` | ${formatNumber(row.ms)} ms | ${formatPercent(row.share)} |`,
    ),
  ];
  return [
    '## CPU profile of the no-op drain',
    '',
    `The inspector's CPU profiler, in this process, while Warren drained ${formatNumber(p.jobs)} ` +
      `no-op jobs (${formatNumber(p.jobsPerSecond)} jobs/s, slower than unprofiled) and then ` +
      'stopped. ' +
      `Busy time ${formatNumber(p.busyMs)} ms (idle left out, and so is the profiler's own ` +
      `work as it stops, \`dispatch\`: ${formatNumber(p.profilerMs)} ms).`,
    '',
    'By package:',
    '',
    ...table(p.byPackage),
    '',
    'Functions with the most self time:',
    '',
    ...table(p.topFunctions),
  ].join('\n');
}

/** How often each variant ran, and which run counts. */
function runsOf(rounds: number): string {
  return rounds === 1 ? 'once' : `${rounds} times, interleaved; the best run of each is reported`;
}

/** The runs of measurement 2, named as the page names them. */
function embedRuns(inference: InferenceResult): Array<[string, EmbedRun]> {
  return [
    ['(a) Warren, batched', inference.warrenBatched],
    ['(b) model called directly', inference.direct],
    ['(c) Warren, maxSize 1', inference.warrenUnbatched],
    ['(d) amqplib embedding worker', inference.plainQueue],
    ['(e) Warren, batched, one model thread', inference.warrenOneThread],
    ['(f) model called directly, one thread', inference.directOneThread],
    ['(g) Warren, batched, model threads spinning', inference.warrenSpinning],
    ['(h) Warren, maxSize 1, model threads spinning', inference.unbatchedSpinning],
  ];
}

/** Both processes' CPU time per sentence, in ms; the broker counts as 0 when unknown. */
export function cpuPerSentenceMs(run: EmbedRun, sentences: number): number {
  const broker = Number.isFinite(run.brokerSeconds) ? run.brokerSeconds : 0;
  return ((run.processSeconds + broker) * 1000) / sentences;
}

type ProfileRows = NonNullable<BenchReport['profile']>['byPackage'];
