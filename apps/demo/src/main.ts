import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AmqpTransport, redactUrl } from '@warren/amqp';
import { describeThrown } from '@warren/core';
import { type DemoBroker, type DemoProgress, runDemo } from './run-demo.ts';

const SHARED = resolve(import.meta.dirname, '../../../../shared');
const DEFAULT_DATA = resolve(SHARED, 'data/sts-b/sts-test.csv');
const DEFAULT_MODEL = resolve(SHARED, 'models/use-lite-en');

const USAGE = `Usage: pnpm demo [--data <sts.csv>] [--model <folder | hub id>] [--limit <pairs>]
                 [--prefetch N] [--prefix <name>] [--json]

Embeds every sentence of an STS Benchmark file through a queue with Warren and reports jobs,
wall time, jobs/s, and the Pearson and Spearman correlation of the pair cosines with the gold
scores. Defaults: the data and model in ../shared when present.

Broker: RabbitMQ at AMQP_URL when it is set and answers; otherwise the embedded broker, in
this process. --limit counts pairs (each pair is two jobs). --prefix names the exchanges and
queues (default warren-demo). --json ends with one JSON line.`;

interface Args {
  dataFile: string;
  model: string;
  limit?: number;
  prefetch?: number;
  prefix?: string;
  json: boolean;
}

async function main(argv: string[]): Promise<number> {
  let args: Args | 'help';
  try {
    args = parseCommandLine(argv);
  } catch (error) {
    console.error(`demo: ${describeThrown(error)}\n\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    console.log(USAGE);
    return 0;
  }

  try {
    const broker = await chooseBroker(process.env.AMQP_URL);
    const report = await runDemo({ ...args, broker, onProgress: showProgress });
    process.stderr.write('\n');
    printReport(report);
    if (args.json) console.log(JSON.stringify(report));
    return report.results === report.jobs && report.duplicates === 0 ? 0 : 1;
  } catch (error) {
    process.stderr.write('\n');
    console.error(`demo: ${describeThrown(error)}`);
    return 1;
  }
}

function parseCommandLine(argv: string[]): Args | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      model: { type: 'string' },
      limit: { type: 'string' },
      prefetch: { type: 'string' },
      prefix: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';

  const dataFile = values.data ?? (existsSync(DEFAULT_DATA) ? DEFAULT_DATA : undefined);
  const model = values.model ?? (existsSync(DEFAULT_MODEL) ? DEFAULT_MODEL : undefined);
  if (dataFile === undefined || model === undefined) {
    throw new Error('pass --data and --model (there is no ../shared folder with defaults here)');
  }
  if (!existsSync(dataFile)) throw new Error(`--data: no file at ${dataFile}`);
  if (/^[./~]/.test(model) && !existsSync(model)) {
    throw new Error(`--model: no model folder at ${model} (a hub id looks like owner/name)`);
  }
  const args: Args = { dataFile, model, json: values.json };
  if (values.limit !== undefined) args.limit = positiveInteger('--limit', values.limit);
  if (values.prefetch !== undefined) args.prefetch = positiveInteger('--prefetch', values.prefetch);
  if (values.prefix !== undefined) args.prefix = values.prefix;
  return args;
}

/** RabbitMQ when AMQP_URL is set and answers; the embedded broker otherwise. Says which. */
async function chooseBroker(url: string | undefined): Promise<DemoBroker> {
  if (url === undefined || url === '') {
    console.error('demo: AMQP_URL is not set; using the embedded broker');
    return { kind: 'embedded' };
  }
  const probe = new AmqpTransport({ url, connectionName: 'warren-demo-probe' });
  try {
    await probe.connect();
    console.error(`demo: using RabbitMQ at ${redactUrl(url)}`);
    return { kind: 'rabbitmq', url };
  } catch (error) {
    console.error(
      `demo: no RabbitMQ answered (${describeThrown(error)}); using the embedded broker`,
    );
    return { kind: 'embedded' };
  } finally {
    await probe.close();
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
