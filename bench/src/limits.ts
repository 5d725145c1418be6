import type { BenchReport, Figure } from './figures.ts';
import { formatNumber, formatPercent } from './format.ts';

/**
 * For each missed target, one paragraph saying by how much and what the run's own measurements
 * say limits it. Only what this run measured is claimed; the reasoning is spelled out.
 */
export function limitsOf(report: BenchReport, figures: readonly Figure[]): string[] {
  const missed = new Set(figures.filter((f) => f.target && !f.target.met).map((f) => f.id));
  const lines: string[] = [];
  if (missed.has('1')) lines.push(runtimeLimit(report));
  if (missed.has('2 a/b')) lines.push(batchedLimit(report));
  if (missed.has('2 a/c')) lines.push(batchingLimit(report));
  if (missed.has('4')) lines.push(memoryLimit(report));
  if (missed.has('5')) lines.push(loopDelayLimit(report));
  return lines;
}

function runtimeLimit(report: BenchReport): string {
  const o = report.overhead!;
  const extraMs = 1000 / o.warren - 1000 / o.plainAck;
  const parts = [
    `**1, runtime:** Warren drained ${formatNumber(o.warren)} no-op jobs/s, the ack-only ` +
      `consumer ${formatNumber(o.plainAck)} (${formatNumber(o.warren / o.plainAck, 2)}×): each ` +
      `job costs Warren ${formatNumber(extraMs, 2)} ms more. Both take each job and ack it ` +
      '(Warren with fewer ack frames), so the difference is the runtime itself' +
      (report.quick
        ? `, and, in a quick run, start-up: a large share of a ${formatNumber(o.jobs)}-job drain. `
        : '. ') +
      'With a confirmed result ' +
      `per job, Warren drained ${formatNumber(o.warrenReply)} jobs/s and an amqplib consumer ` +
      `doing the same ${formatNumber(o.plainReply)} ` +
      `(${formatNumber(o.warrenReply / o.plainReply, 2)}×).`,
  ];
  const first = o.warrenTenths[0];
  const last = o.warrenTenths.at(-1);
  if (first !== undefined && last !== undefined && last < 0.7 * first) {
    parts.push(
      `Its rate falls as it runs, from ${formatNumber(first)} jobs/s over the first tenth of the ` +
        `drain to ${formatNumber(last)} over the last: a job costs more the more jobs the ` +
        'consumer has handled since it started, so a longer run would show a lower ratio still.',
    );
  }
  if (o.warrenStopSeconds > 1) {
    parts.push(
      `Stopping the worker after the drain took ${formatNumber(o.warrenStopSeconds, 1)} s ` +
        'with nothing left to do, which points the same way: work that grows with the jobs ' +
        'handled before.',
    );
  }
  parts.push(profileEvidence(report));
  return parts.filter((part) => part !== '').join(' ');
}

/** What the CPU profile says about the runtime's cost, if there is one. */
function profileEvidence(report: BenchReport): string {
  const p = report.profile;
  if (p === undefined) return 'Run without `--quick` for a CPU profile of the drain.';
  const top = p.byPackage[0];
  const functions = p.topFunctions
    .slice(0, 3)
    .map((f) => `\`${f.name}\` ${formatPercent(f.share)}`)
    .join(', ');
  const wallMs = (p.jobs / p.jobsPerSecond) * 1000;
  const busyShare = p.busyMs / wallMs;
  const parts = [
    `While profiled, the main thread was busy ${formatPercent(busyShare)} of the drain's ` +
      `wall time, ${formatNumber(p.busyMs / p.jobs, 2)} ms of CPU per job` +
      (busyShare >= 0.85
        ? ': the runtime is bound by JavaScript CPU time on one thread, not by the broker.'
        : '.'),
    `In the CPU profile of the drain (below), ${top ? `${top.name} takes ${formatPercent(top.share)} of the busy time` : 'nothing stands out'}; ` +
      `the functions with most self time are ${functions}.`,
  ];
  return parts.join(' ');
}

function batchedLimit(report: BenchReport): string {
  const i = report.inference!;
  const a = i.warrenBatched;
  const b = i.direct;
  const gapMs = 1000 / a.sentencesPerSecond - 1000 / b.sentencesPerSecond;
  const perSentence = (seconds: number) => (seconds * 1000) / i.sentences;
  const parts = [
    `**2 a/b, batched inference:** Warren embedded ${formatNumber(a.sentencesPerSecond)} ` +
      `sentences/s, the direct calls ${formatNumber(b.sentencesPerSecond)} ` +
      `(${formatNumber(a.sentencesPerSecond / b.sentencesPerSecond, 2)}×): ` +
      `${formatNumber(gapMs, 2)} ms more per sentence.`,
  ];
  if (Number.isFinite(a.brokerSeconds) && Number.isFinite(b.brokerSeconds)) {
    const processMs = perSentence(a.processSeconds - b.processSeconds);
    const mainMs = perSentence(a.mainThreadSeconds - b.mainThreadSeconds);
    const brokerMs = perSentence(a.brokerSeconds - b.brokerSeconds);
    parts.push(
      `What the CPU times show: per sentence, Warren's process used ` +
        `${formatNumber(processMs, 2)} ms more CPU than the direct calls, RabbitMQ ` +
        `${formatNumber(brokerMs, 2)} ms more (taking, persisting and routing jobs and results).`,
    );
    if (Number.isFinite(mainMs)) {
      parts.push(
        `Of the process's share, ${formatNumber(mainMs, 2)} ms is its main thread: the queue ` +
          `work itself (decoding and validating jobs, serialising each result as a ` +
          `${formatNumber(i.resultBytes)}-byte JSON vector, publishing it with a confirm, ` +
          `acking); the other ${formatNumber(processMs - mainMs, 2)} ms is the other threads ` +
          "(the model's, and V8's and libuv's helpers; this run does not tell them apart).",
      );
    }
    const wallSeconds = i.sentences / a.sentencesPerSecond;
    const busyCores = (a.processSeconds + a.brokerSeconds) / wallSeconds;
    const cores = report.machine.cores;
    parts.push(
      `This process and RabbitMQ together kept ${formatNumber(busyCores, 1)} of the ${cores} cores busy during (a), ` +
        (busyCores >= 0.8 * cores
          ? 'so the queue work took CPU the model would otherwise have had: the limit is CPU ' +
            '((e) and (f) below: the same work with a core left free).'
          : 'so the cores were not saturated: waiting (on confirms, or on the batch to fill) ' +
            'limits it more than CPU does.'),
    );
    if (busyCores >= 0.8 * cores) parts.push(brokerBound(i));
  } else {
    parts.push(
      `Each result is a ${formatNumber(i.resultBytes)}-byte JSON vector that Warren serialises ` +
        'and publishes with a confirm; the broker was not on this machine, so its CPU use is ' +
        'not known.',
    );
  }
  parts.push(queueEvidence(i));
  return parts.filter((part) => part !== '').join(' ');
}

/**
 * The most (a) could reach against (b) on saturated cores, counting only RabbitMQ's CPU: the
 * model's work and the broker's share the cores, so the ratio is at most 1 / (1 + share).
 */
function brokerBound(i: NonNullable<BenchReport['inference']>): string {
  const brokerMs = (i.warrenBatched.brokerSeconds * 1000) / i.sentences;
  const directMs = ((i.direct.processSeconds + i.direct.brokerSeconds) * 1000) / i.sentences;
  const share = brokerMs / directMs;
  return (
    `RabbitMQ alone used ${formatNumber(brokerMs, 2)} ms of CPU per sentence in (a), ` +
    `${formatPercent(share)} of the ${formatNumber(directMs, 2)} ms the direct calls used: on ` +
    `cores that are all busy, that caps (a) at about ${formatNumber(1 / (1 + share), 2)}× (b) ` +
    "before any of the worker's own work is counted."
  );
}

/**
 * What the runs beside (a) and (b) say: how much of what Warren loses to the direct calls a queue
 * worker written by hand loses too, and how Warren fares when the model leaves a core free.
 */
function queueEvidence(i: NonNullable<BenchReport['inference']>): string {
  const a = i.warrenBatched.sentencesPerSecond;
  const b = i.direct.sentencesPerSecond;
  const d = i.plainQueue.sentencesPerSecond;
  const e = i.warrenOneThread.sentencesPerSecond;
  const f = i.directOneThread.sentencesPerSecond;
  if (!(d > 0 && e > 0 && f > 0)) return '';
  // The hand-written worker's loss against the direct calls, as a share of Warren's.
  const shared = b > a ? (b - d) / (b - a) : 0;
  let verdict = '.';
  if (shared >= 1) {
    verdict =
      ': a queue worker written by hand loses as much to the direct calls as Warren or more, so ' +
      'the gap is what taking jobs and publishing results costs on this machine.';
  } else if (shared >= 0.75) {
    verdict =
      `: it loses ${formatPercent(shared)} of what Warren loses, so most of the gap is what ` +
      'taking jobs and publishing results costs any queue worker on this machine; the rest is ' +
      "Warren's own.";
  } else if (shared > 0) {
    verdict = `: it loses ${formatPercent(shared)} of what Warren loses; the rest is Warren's own.`;
  }
  const parts = [
    `The embedding worker written on amqplib (d) reached ${formatNumber(d)} sentences/s ` +
      `(${formatNumber(d / b, 2)}× the direct calls; Warren ${formatNumber(a / d, 2)}× it)` +
      verdict,
    `With ONNX Runtime held to one thread, Warren reached ${formatNumber(e)} sentences/s and ` +
      `the direct calls ${formatNumber(f)} (${formatNumber(e / f, 2)}×)` +
      (e / f >= 0.95
        ? ', at least the 0.95 the target asks: what the queue costs fits in the core the model ' +
          'leaves free.'
        : '.'),
  ];
  return parts.join(' ');
}

function batchingLimit(report: BenchReport): string {
  const i = report.inference!;
  const a = i.warrenBatched.sentencesPerSecond;
  const c = i.warrenUnbatched.sentencesPerSecond;
  if (!i.batchingAvailable) {
    return (
      `**2 a/c, batching:** ${formatNumber(a / c, 2)}×, because this build's worker config takes ` +
      'no `batch` override: (a) and (c) ran the same way, one job per model call.'
    );
  }
  return (
    `**2 a/c, batching:** batches of ${i.batchSize} reached ${formatNumber(a)} sentences/s, ` +
    `maxSize 1 ${formatNumber(c)} (${formatNumber(a / c, 2)}×). The model itself gains ` +
    `${formatNumber(i.direct.sentencesPerSecond)} sentences/s in batches; what Warren loses ` +
    'per job (see 2 a/b) is paid in both runs and narrows the ratio.'
  );
}

function memoryLimit(report: BenchReport): string {
  const m = report.memory!;
  const growth = m.warren.endRssMiB - m.warren.startRssMiB;
  const importMiB = m.model.beforeMiB - m.plain.startRssMiB;
  const parts = [
    `**4, memory:** the worker peaked at ${formatNumber(m.warren.peakRssMiB)} MiB without a ` +
      `model (the amqplib consumer process: ${formatNumber(m.plain.peakRssMiB)} MiB). It held ` +
      `${formatNumber(m.warren.startRssMiB)} MiB before its first job, against ` +
      `${formatNumber(m.plain.startRssMiB)} MiB for the amqplib consumer (both without a ` +
      `TypeScript loader: a process that runs nothing holds ${formatNumber(m.loader.nodeMiB)} ` +
      `MiB, ${formatNumber(m.loader.tsxMiB)} MiB once tsx's loader is registered, as it is for ` +
      'a plugin written in TypeScript).',
  ];
  if (importMiB > 50) {
    parts.push(
      `A process that only imports \`@warren/inference\` already holds ` +
        `${formatNumber(m.model.beforeMiB)} MiB: about ${formatNumber(importMiB)} MiB of ` +
        'transformers.js and ONNX Runtime that a worker loads whether or not a handler uses a ' +
        'local model.',
    );
  }
  if (growth > 20) {
    const retainedMiB = (m.heap.bytesPerJob.memoryDedupe * m.warren.drained) / 2 ** 20;
    parts.push(
      `Its RSS grew by ${formatNumber(growth)} MiB while it drained ` +
        `${formatNumber(m.warren.drained)} jobs in ${m.seconds} s, yet the live heap it keeps ` +
        `per job (${formatNumber(m.heap.bytesPerJob.memoryDedupe)} bytes) accounts for only ` +
        `${formatNumber(retainedMiB)} MiB of that: the rest is garbage V8 had not yet collected ` +
        'or returned to the system while jobs went through fast. Prefetch bounds what it ' +
        'holds; when V8 runs its full collections sets the peak.',
    );
  } else {
    parts.push(
      `Its RSS stayed within ${formatNumber(Math.max(0, growth))} MiB of where it started ` +
        'while it drained, so the peak is that fixed cost, not the backlog.',
    );
  }
  if (m.heap.bytesPerJob.noDedupe > 50) {
    parts.push(
      `Even with dedupe off, the heap grows by ${formatNumber(m.heap.bytesPerJob.noDedupe)} ` +
        'bytes per job handled: state that outlives its job, without a bound over a long run.',
    );
  }
  const tuned = m.warrenTuned;
  parts.push(
    `Started with \`node ${m.flags.join(' ')}\`, the worker peaked at ` +
      `${formatNumber(tuned.peakRssMiB)} MiB and drained ${formatNumber(tuned.drained)} jobs in ` +
      `the same ${m.seconds} s (${formatNumber(m.warren.drained)} with the defaults): after each ` +
      'full collection V8 lets the old generation grow to a multiple of what survived it before ' +
      'the next, and allows a larger multiple under a larger heap limit, which by default ' +
      "follows the machine's memory. A container that limits memory should set the limit " +
      '(docs/operating.md).',
  );
  return parts.join(' ');
}

function loopDelayLimit(report: BenchReport): string {
  const i = report.inference!;
  const batchMs = (i.batchSize / i.direct.sentencesPerSecond) * 1000;
  return (
    `**5, event-loop delay:** p99 ${formatNumber(i.warrenBatched.loopDelayP99Ms)} ms while ` +
    'Warren ran batches, and ' +
    `${formatNumber(i.direct.loopDelayP99Ms)} ms when the model is called directly with nothing ` +
    'else in the process. The model runs in a worker thread, but tokenising a batch and pooling ' +
    'its output stay on the main thread, and with two cores the model threads, the event loop ' +
    `and the broker share them: a batch of ${i.batchSize} takes about ${formatNumber(batchMs)} ` +
    'ms at the direct rate, longer for long sentences (a batch is padded to its longest). ' +
    'Smaller batches (or `maxTokens`) shorten the stalls.'
  );
}
