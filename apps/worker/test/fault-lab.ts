import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ConsumerCounts, DEFAULT_RETRY_POLICY, HEADERS } from '@warren/core';
import { FaultProxy } from '@warren/testing';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { parseConfig, Worker } from '../src/index.ts';
import { AMQP_URL, type BrokerProbe, brokerEnv, testBroker, uniquePrefix } from './support.ts';

const LAB = fileURLToPath(new URL('./fixtures/lab.ts', import.meta.url));

/**
 * Retries and deferrals come back after 100 ms: a job deferred because this worker still held
 * its claim (it was running when its delivery came again) returns quickly.
 */
export const FAST_RETRY = { ...DEFAULT_RETRY_POLICY, initialDelayMs: 100, jitter: 0 };

/** Reconnects within a fraction of a second, so that a test can lose the broker often. */
export const FAST_RECOVERY = { initialDelayMs: 20, maxDelayMs: 200 };

export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** What the worker and its producer need in a fault test; see {@link startFaultLab}. */
export interface FaultLab {
  readonly prefix: string;
  /** Sits between the worker and the broker; the producer and the probe bypass it. */
  readonly proxy: FaultProxy;
  readonly worker: Worker;
  /** Every line the worker logged, parsed. */
  readonly logs: LogLine[];
  /** Results, as they reach the reply queue the jobs name. */
  readonly results: ConsumeMessage[];
  readonly deadLetters: ConsumeMessage[];
  /** The name the worker's connection shows on the broker. */
  readonly connectionName: string;
  /** Publishes lab jobs straight to the broker and waits for its confirms; returns their ids. */
  publish(inputs: Array<Record<string, unknown>>): Promise<string[]>;
  /** The lab handler's consumer counts. */
  counts(): ConsumerCounts;
  consumerState(): string;
  /** Log lines with this message. */
  logged(msg: string): LogLine[];
  close(): Promise<void>;
}

export interface FaultLabOptions {
  prefetch: number;
  concurrency: number;
  /** Fields added to the worker config's `broker` section. */
  broker?: Record<string, unknown>;
}

/**
 * A worker running the lab handler (fixtures/lab.ts) in this process, connected through a
 * {@link FaultProxy}, with the memory dedupe store; results and dead letters collected on the
 * probe's own connection. {@link FaultLab.close} stops the worker, closes the proxy and deletes
 * the topology, whatever state the test left them in.
 */
export async function startFaultLab(
  probe: BrokerProbe,
  options: FaultLabOptions,
): Promise<FaultLab> {
  const prefix = uniquePrefix();
  const connectionName = `warren-test-${prefix}`;
  const target = new URL(AMQP_URL);
  const proxy = await FaultProxy.start({
    host: target.hostname,
    port: Number(target.port || 5672),
  });
  const producer = await probe.connection.createConfirmChannel();
  const reply = await probe.replyQueue();
  const logs: LogLine[] = [];
  const config = parseConfig(
    {
      broker: {
        ...testBroker(urlThrough(proxy)),
        connectionName,
        recovery: FAST_RECOVERY,
        ...options.broker,
      },
      topology: { prefix },
      dedupe: { store: 'memory' },
      handlers: [
        {
          module: LAB,
          prefetch: options.prefetch,
          concurrency: options.concurrency,
          retry: FAST_RETRY,
        },
      ],
      shutdown: { drainTimeoutMs: 10_000 },
    },
    process.cwd(),
  );
  const logger = pino(
    // Debug: a few checks read the transport's debug lines (dropped settles, resent publishes).
    { level: 'debug' },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  );

  let worker: Worker | undefined;
  let deadLetters: ConsumeMessage[];
  try {
    worker = await Worker.start({ config, logger, env: brokerEnv() });
    deadLetters = await probe.collect(`${prefix}.dead-letter.lab`);
  } catch (error) {
    await worker?.stop();
    await proxy.close();
    await closeChannel(producer);
    throw error;
  }
  const started = worker;
  const consumer = () => started.consumers[0]!.consumer;
  let next = 0;

  return {
    prefix,
    proxy,
    worker: started,
    logs,
    results: reply.messages,
    deadLetters,
    connectionName,
    async publish(inputs) {
      const ids = inputs.map((input) => {
        const messageId = `${prefix}-job-${next++}`;
        producer.publish(`${prefix}.jobs`, 'lab.public', Buffer.from(JSON.stringify(input)), {
          contentType: 'application/json',
          messageId,
          replyTo: reply.queue,
          persistent: true,
          headers: { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'lab' },
        });
        return messageId;
      });
      await producer.waitForConfirms();
      return ids;
    },
    counts: () => consumer().counts,
    consumerState: () => consumer().state,
    logged: (msg) => logs.filter((line) => line.msg === msg),
    async close() {
      proxy.refuse(false);
      proxy.resume();
      await started.stop();
      await proxy.close();
      await closeChannel(producer);
      await probe.deleteTopology(prefix, ['lab'], { retry: FAST_RETRY });
    },
  };
}

/** {@link AMQP_URL} with its host and port replaced by the proxy's. */
export function urlThrough(proxy: FaultProxy): string {
  const url = new URL(AMQP_URL);
  url.hostname = proxy.host;
  url.port = String(proxy.port);
  return url.href;
}

/**
 * The results each job got: by the job's id (the result's correlation id), the ids of the
 * result messages. A handler run makes a result with an id of its own, so one id per job means
 * one result, however many copies of it arrived.
 */
export function resultsByJob(results: readonly ConsumeMessage[]): Map<string, Set<string>> {
  const byJob = new Map<string, Set<string>>();
  for (const { properties } of results) {
    const job = String(properties.correlationId);
    const ids = byJob.get(job) ?? new Set<string>();
    ids.add(String(properties.messageId));
    byJob.set(job, ids);
  }
  return byJob;
}

/** The jobs that got more than one result (not copies of one: results of different runs). */
export function answeredTwice(byJob: Map<string, Set<string>>): string[] {
  return [...byJob].filter(([, ids]) => ids.size > 1).map(([job]) => job);
}

/** How many result messages arrived beyond the first copy of each. */
export function copies(results: readonly ConsumeMessage[]): number {
  const distinct = new Set(
    results.map((r) => `${r.properties.correlationId} ${r.properties.messageId}`),
  );
  return results.length - distinct.size;
}

/**
 * Publishes the worker's transport sent again after a reconnect, because the broker had not
 * confirmed them when the connection went: the broker may have taken them the first time.
 */
export function resent(lab: FaultLab): number {
  return lab
    .logged('unconfirmed publishes kept to send again')
    .reduce((sum, line) => sum + Number(line.messages), 0);
}

/**
 * Closes, from the broker's side, the one connection whose client properties carry
 * `connectionName`: never any other, since other tests and workers share the broker.
 */
export async function closeConnectionNamed(connectionName: string): Promise<void> {
  const run = promisify(execFile);
  const listing = ['list_connections', 'pid', 'client_properties', '-q', '--no-table-headers'];
  const { stdout } = await run('rabbitmqctl', listing);
  // One line per connection: its process id, a tab, then its client properties as Erlang terms.
  const ours = stdout
    .split('\n')
    .filter((line) => line.includes(`{"connection_name","${connectionName}"}`));
  if (ours.length !== 1) {
    throw new Error(`expected one broker connection named ${connectionName}, found ${ours.length}`);
  }
  const pid = ours[0]!.split('\t')[0]!;
  await run('rabbitmqctl', ['close_connection', pid, 'closed by a Warren fault test']);
}

async function closeChannel(channel: ConfirmChannel): Promise<void> {
  try {
    await channel.close();
  } catch {
    // Already closed with its connection.
  }
}
