import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BrokerUnreachableError } from '@warren/core';
import { type DemoProgress, runDemo } from './run-demo.ts';

const SHARED = resolve(import.meta.dirname, '../../../../shared');
const DEFAULT_DATA = resolve(SHARED, 'data/sts-b/sts-test.csv');
const DEFAULT_MODEL = resolve(SHARED, 'models/use-lite-en');
const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';

const USAGE = `Usage: pnpm demo [--data <sts.csv>] [--model <folder | hub id>] [--limit N] [--json]

Embeds every sentence of an STS Benchmark file through RabbitMQ with Warren and reports jobs,
wall time, jobs/s, and the Pearson and Spearman correlation of the pair cosines with the gold
scores. Defaults: the data and model in ../shared when present. Broker: AMQP_URL
(default ${DEFAULT_URL.replace('guest:guest@', '')}).`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      model: { type: 'string' },
      limit: { type: 'string' },
      prefetch: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }

  const dataFile = values.data ?? (existsSync(DEFAULT_DATA) ? DEFAULT_DATA : undefined);
  const model = values.model ?? (existsSync(DEFAULT_MODEL) ? DEFAULT_MODEL : undefined);
  if (dataFile === undefined || model === undefined) {
    console.error(
      `demo: pass --data and --model (no ../shared folder with defaults here)\n\n${USAGE}`,
    );
    return 2;
  }
  const amqpUrl = process.env.AMQP_URL ?? DEFAULT_URL;

  try {
    const report = await runDemo({
      dataFile,
      model,
      amqpUrl,
      ...(values.limit === undefined ? {} : { limit: positiveInteger('--limit', values.limit) }),
      ...(values.prefetch === undefined
        ? {}
        : { prefetch: positiveInteger('--prefetch', values.prefetch) }),
      onProgress: showProgress,
    });
    process.stderr.write('\n');
    printReport(report);
    if (values.json) console.log(JSON.stringify(report));
    return report.results === report.jobs && report.duplicates === 0 ? 0 : 1;
  } catch (error) {
    process.stderr.write('\n');
    if (error instanceof BrokerUnreachableError) {
      console.error(
        `demo: no RabbitMQ answered. ${error.message}\n` +
          'Start one (for example `rabbitmq-server -detached`) or point AMQP_URL at one.',
      );
      return 1;
    }
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

let lastLineAt = 0;

/** One line redrawn in place on a terminal; a line every 2 s when stderr is a file or pipe. */
function showProgress(progress: DemoProgress): void {
  const seconds = progress.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(progress.results / seconds) : 0;
  const line =
    `published ${progress.published}/${progress.jobs}  results ${progress.results}` +
    `  dead-lettered ${progress.deadLettered}  ${seconds.toFixed(1)} s  ${rate} jobs/s`;
  if (process.stderr.isTTY) process.stderr.write(`\r${line}`);
  else if (progress.elapsedMs - lastLineAt >= 2000) {
    lastLineAt = progress.elapsedMs;
    process.stderr.write(`${line}\n`);
  }
}

function printReport(report: Awaited<ReturnType<typeof runDemo>>): void {
  console.log(`broker      ${report.broker}`);
  console.log(`model       ${report.model}`);
  console.log(`jobs        ${report.jobs} (${report.pairs} pairs)`);
  console.log(
    `results     ${report.results} (duplicates ${report.duplicates}, dead-lettered ${report.dead_lettered})`,
  );
  console.log(`wall time   ${report.seconds} s`);
  console.log(`jobs/s      ${report.jobs_per_s}`);
  console.log(`pearson     ${report.pearson.toFixed(4)}`);
  console.log(`spearman    ${report.spearman.toFixed(4)}`);
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${flag}: expected a positive integer, found ${JSON.stringify(text)}`);
  }
  return value;
}

process.exitCode = await main(process.argv.slice(2));
