import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmqpTransport, redactUrl } from '@warren/amqp';
import { type Delivery, JobPublisher, type Transport } from '@warren/core';
import { MemoryBroker, MemoryTransport } from '@warren/memory';
import { parseConfig, Worker } from '@warren/worker';
import { type Logger, pino } from 'pino';
import { cosine, pearson, readPairs, spearman } from './sts.ts';

const PLUGIN = fileURLToPath(new URL('../plugins/embed-sentence.ts', import.meta.url));
const MODEL_TYPE = 'sentence-embedding';
/** Jobs published but not yet confirmed, at most. Bounds the producer's memory, not the broker's. */
const PUBLISH_WINDOW = 256;

/** Where the jobs go: RabbitMQ at a URL, or the embedded broker in this process. */
export type DemoBroker = { kind: 'rabbitmq'; url: string } | { kind: 'embedded' };

export interface DemoOptions {
  /** An STS Benchmark file (tab-separated). */
  dataFile: string;
  /** A model folder, or a hub model id (then loaded from the hub). */
  model: string;
  broker: DemoBroker;
  /** Exchange and queue name prefix (default `warren-demo`). */
  prefix?: string;
  /** Use only the first N pairs. */
  limit?: number;
  prefetch?: number;
  /** The worker's logger (default: warnings and errors to stderr). */
  logger?: Logger;
  onProgress?: (progress: DemoProgress) => void;
  /** Give up when no result arrives for this long (default 120 s). */
  stallTimeoutMs?: number;
}

export interface DemoProgress {
  published: number;
  results: number;
  deadLettered: number;
  jobs: number;
  elapsedMs: number;
}

/** What the demo prints with `--json`. */
export interface DemoReport {
  jobs: number;
  results: number;
  duplicates: number;
  dead_lettered: number;
  pairs: number;
  seconds: number;
  jobs_per_s: number;
  pearson: number;
  spearman: number;
  broker: string;
  model: string;
}

/**
 * The main job: publishes every sentence of an STS Benchmark file as a job, lets a worker embed
 * each one, collects the results, and scores the pair cosines against the gold similarities.
 */
export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const pairs = (await readPairs(options.dataFile)).slice(0, options.limit);
  const texts = pairs.flatMap((pair) => [pair.first, pair.second]);
  const logger = options.logger ?? pino({ level: 'warn' }, pino.destination(2));
  const prefix = options.prefix ?? 'warren-demo';

  const transports = transportsFor(options.broker);
  const producer = transports.create('warren-demo');
  await producer.connect();
  let worker: Worker | undefined;
  try {
    worker = await Worker.start({
      config: parseConfig(workerConfig(options, prefix), process.cwd()),
      logger,
      transport: transports.create('warren-demo-worker'),
      env: {},
    });
    const consumer = worker.consumers[0]!.consumer;
    const collected = await collect(
      producer,
      texts,
      prefix,
      options,
      () => consumer.counts.deadLettered,
    );
    const cosines = pairs.map((_, i) =>
      cosine(collected.vectors.get(2 * i) ?? [], collected.vectors.get(2 * i + 1) ?? []),
    );
    const gold = pairs.map((pair) => pair.score);
    return {
      jobs: texts.length,
      results: collected.results,
      duplicates: collected.duplicates,
      dead_lettered: consumer.counts.deadLettered,
      pairs: pairs.length,
      seconds: round(collected.elapsedMs / 1000, 3),
      jobs_per_s: round(texts.length / (collected.elapsedMs / 1000), 1),
      pearson: round(pearson(cosines, gold), 4),
      spearman: round(spearman(cosines, gold), 4),
      broker: transports.name,
      model: options.model,
    };
  } finally {
    await worker?.stop();
    await producer.close();
  }
}

function workerConfig(options: DemoOptions, prefix: string): unknown {
  const isFolder = existsSync(options.model) && statSync(options.model).isDirectory();
  const folder = resolve(options.model);
  return {
    topology: { prefix },
    inference: {
      local: isFolder
        ? { modelPath: dirname(folder), allowRemoteModels: false }
        : { allowRemoteModels: true },
    },
    handlers: [
      {
        module: PLUGIN,
        prefetch: options.prefetch ?? 64,
        options: { model: isFolder ? basename(folder) : options.model },
      },
    ],
    log: { level: 'warn' },
  };
}

interface Collected {
  vectors: Map<number, number[]>;
  results: number;
  duplicates: number;
  elapsedMs: number;
}

/** Publishes one job per text with a reply-to queue and gathers one result per job. */
async function collect(
  producer: Transport,
  texts: string[],
  prefix: string,
  options: DemoOptions,
  deadLettered: () => number,
): Promise<Collected> {
  const replyQueue = await producer.declareReplyQueue();
  const publisher = new JobPublisher(producer, { prefix });
  const indexOf = new Map<string, number>();
  const vectors = new Map<number, number[]>();
  let results = 0;
  let duplicates = 0;
  let published = 0;
  let lastResultAt = Date.now();

  const subscription = await producer.consume(
    replyQueue,
    { prefetch: 512 },
    (delivery: Delivery) => {
      producer.ack(delivery);
      const index = indexOf.get(delivery.properties.correlationId ?? '');
      if (index === undefined) return;
      if (vectors.has(index)) {
        duplicates += 1;
        return;
      }
      const { embedding } = JSON.parse(delivery.body.toString('utf-8')) as { embedding: number[] };
      vectors.set(index, embedding);
      results += 1;
      lastResultAt = Date.now();
    },
  );

  const startedAt = Date.now();
  const progress = () =>
    options.onProgress?.({
      published,
      results,
      deadLettered: deadLettered(),
      jobs: texts.length,
      elapsedMs: Date.now() - startedAt,
    });
  const ticker = setInterval(progress, 250);
  try {
    const inFlight = new Set<Promise<void>>();
    for (const [index, text] of texts.entries()) {
      // The id is known before publishing: a result may arrive before the publish confirm.
      const messageId = randomUUID();
      indexOf.set(messageId, index);
      const publish = publisher
        .publish({
          modelType: MODEL_TYPE,
          tenant: 'demo',
          input: { text },
          replyTo: replyQueue,
          messageId,
        })
        .then(() => {
          published += 1;
        });
      inFlight.add(publish);
      void publish.finally(() => inFlight.delete(publish));
      if (inFlight.size >= PUBLISH_WINDOW) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);

    const stallLimit = options.stallTimeoutMs ?? 120_000;
    while (results + deadLettered() < texts.length) {
      if (Date.now() - lastResultAt > stallLimit) {
        throw new Error(
          `no result for ${stallLimit / 1000} s: ${results} of ${texts.length} jobs done`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const elapsedMs = Date.now() - startedAt;
    progress();
    return { vectors, results, duplicates, elapsedMs };
  } finally {
    clearInterval(ticker);
    await subscription.cancel();
  }
}

/** Makes the transports of one demo run; the embedded broker is shared by all of them. */
function transportsFor(broker: DemoBroker): { name: string; create(name: string): Transport } {
  if (broker.kind === 'rabbitmq') {
    return {
      name: redactUrl(broker.url),
      create: (connectionName) => new AmqpTransport({ url: broker.url, connectionName }),
    };
  }
  const embedded = new MemoryBroker();
  return {
    name: 'embedded',
    create: (connectionName) => new MemoryTransport(embedded, { connectionName }),
  };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
