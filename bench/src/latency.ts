import { randomUUID } from 'node:crypto';
import { type Delivery, JobPublisher } from '@warren/core';
import { LocalInference } from '@warren/inference';
import { loadHandler, parseConfig, Worker } from '@warren/worker';
import { pino } from 'pino';
import type { BenchBroker } from './broker.ts';
import { localModels, readSentences } from './inference.ts';
import { startPlainEmbedder } from './plain-embedder.ts';
import { percentile } from './stats.ts';
import { workerConfig } from './warren-run.ts';

const MODEL_TYPE = 'bench-embed';

export interface LatencyOptions {
  dataFile: string;
  modelPath: string;
  model: string;
  /** Jobs per second to publish at. */
  rate: number;
  seconds: number;
  batchSize: number;
  maxWaitMs: number;
  prefetch: number;
  concurrency: number;
}

/** Publish-to-result latency of one worker at a fixed publishing rate. */
export interface LatencyRun {
  published: number;
  received: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LatencyResult {
  rate: number;
  seconds: number;
  warren: LatencyRun;
  plain: LatencyRun;
}

/**
 * Measurement 3: jobs published open-loop at a fixed rate, each timed from the moment it was due
 * (not when the publisher got round to it, so a stalled publisher cannot hide queueing) to the
 * arrival of its result on a reply-to queue. Warren's worker first, then the hand-written
 * amqplib worker, on the same queue.
 */
export async function measureLatency(
  broker: BenchBroker,
  options: LatencyOptions,
  log: (line: string) => void,
): Promise<LatencyResult> {
  const sentences = await readSentences(options.dataFile);
  await broker.declare(MODEL_TYPE, 'embed-results');
  const queue = broker.topology(MODEL_TYPE).queue;

  const config = parseConfig(
    workerConfig(broker, {
      plugin: 'embed.ts',
      prefetch: options.prefetch,
      concurrency: options.concurrency,
      batch: { maxSize: options.batchSize, maxWaitMs: options.maxWaitMs },
      modelPath: options.modelPath,
      options: { model: options.model, pooling: 'cls' },
    }),
    process.cwd(),
  );
  await loadHandler(config.handlers[0]!.module, 0, config.handlers[0]!.options);
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const worker = await Worker.start({
    config,
    logger,
    transport: broker.transport('warren-bench-worker'),
    env: {},
  });
  let warren: LatencyRun;
  try {
    warren = await openLoop(broker, sentences, options);
  } finally {
    await worker.stop();
  }
  log(`  warren: p50 ${warren.p50Ms.toFixed(1)} ms, p99 ${warren.p99Ms.toFixed(1)} ms`);

  const connection = await broker.connectPlain('warren-bench-plain-embedder');
  const inference = new LocalInference(localModels(options.modelPath));
  const embedder = await startPlainEmbedder(connection, queue, {
    inference,
    model: options.model,
    prefetch: options.prefetch,
    maxBatch: options.batchSize,
  });
  let plain: LatencyRun;
  try {
    plain = await openLoop(broker, sentences, options);
  } finally {
    await embedder.stop();
    await connection.close();
  }
  log(`  plain: p50 ${plain.p50Ms.toFixed(1)} ms, p99 ${plain.p99Ms.toFixed(1)} ms`);
  return { rate: options.rate, seconds: options.seconds, warren, plain };
}

/** How often the publisher wakes to publish the jobs that have fallen due. */
const TICK_MS = 5;
/** How long to wait for the last results after publishing stops. */
const SETTLE_MS = 30_000;

async function openLoop(
  broker: BenchBroker,
  sentences: string[],
  options: LatencyOptions,
): Promise<LatencyRun> {
  const producer = broker.transport('warren-bench-latency');
  await producer.connect();
  const replyQueue = await producer.declareReplyQueue();
  const publisher = new JobPublisher(producer, { prefix: broker.prefix });
  const dueAt = new Map<string, number>();
  const latencies: number[] = [];
  const subscription = await producer.consume(
    replyQueue,
    { prefetch: 1_000 },
    (delivery: Delivery) => {
      const arrivedAt = performance.now();
      producer.ack(delivery);
      const due = dueAt.get(delivery.properties.correlationId ?? '');
      if (due !== undefined) latencies.push(arrivedAt - due);
    },
  );

  const total = Math.round(options.rate * options.seconds);
  const startedAt = performance.now();
  let published = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const elapsed = (performance.now() - startedAt) / 1000;
        const due = Math.min(total, Math.floor(elapsed * options.rate));
        for (; published < due; published += 1) {
          const messageId = randomUUID();
          dueAt.set(messageId, startedAt + (published / options.rate) * 1000);
          publisher
            .publish({
              modelType: MODEL_TYPE,
              tenant: 'bench',
              input: { text: sentences[published % sentences.length]! },
              replyTo: replyQueue,
              messageId,
            })
            .catch((error: unknown) => {
              clearInterval(timer);
              reject(error);
            });
        }
        if (published >= total) {
          clearInterval(timer);
          resolve();
        }
      }, TICK_MS);
    });
    const settleBy = performance.now() + SETTLE_MS;
    while (latencies.length < total && performance.now() < settleBy) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await subscription.cancel();
    await producer.close();
  }

  const sorted = latencies.toSorted((a, b) => a - b);
  return {
    published,
    received: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? Number.NaN,
  };
}
