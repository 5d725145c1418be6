import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  answeredTwice,
  closeConnectionNamed,
  copies,
  type FaultLab,
  type FaultLabOptions,
  type LogLine,
  resent,
  resultsByJob,
  startFaultLab,
} from './fault-lab.ts';
import { labCalls } from './fixtures/lab.ts';
import { BrokerProbe, waitFor } from './support.ts';

// A worker in this process talks to RabbitMQ through a FaultProxy; the producer and the result
// collector talk to it directly, so a fault hits the worker alone.

let probe: BrokerProbe;
const labs: FaultLab[] = [];

beforeAll(async () => {
  probe = await BrokerProbe.open();
});
afterEach(async () => {
  for (const lab of labs.splice(0)) await lab.close();
});
afterAll(async () => {
  await probe?.close();
});

async function open(options: FaultLabOptions): Promise<FaultLab> {
  const lab = await startFaultLab(probe, options);
  labs.push(lab);
  return lab;
}

/** Handler calls per job key, for the keys that start with `prefix`. */
function callsPerKey(prefix: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const call of labCalls()) {
    if (call.key.startsWith(prefix)) calls.set(call.key, (calls.get(call.key) ?? 0) + 1);
  }
  return calls;
}

/** Lab jobs with keys `<prefix>-<tag><n>`. */
function jobs(prefix: string, tag: string, count: number, sleepMs = 0) {
  return Array.from({ length: count }, (_, n) => ({ key: `${prefix}-${tag}${n}`, sleepMs }));
}

/** Waits until every job the consumer took has ended and the work queue is empty. */
async function settled(lab: FaultLab): Promise<void> {
  const queue = `${lab.prefix}.jobs.lab`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const counts = lab.counts();
    const ended =
      counts.succeeded +
      counts.duplicates +
      counts.deferred +
      counts.retried +
      counts.deadLettered +
      counts.dropped +
      counts.requeued;
    const { messageCount } = await probe.messageCount(queue);
    if (ended === counts.received && messageCount === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`jobs still open: ${JSON.stringify(counts)}, ${messageCount} queued`);
    }
    await sleep(100);
  }
}

/**
 * Each job has exactly one result: one handler run, one result message id. Copies of a result
 * (the same message id) arrive only as the transport documents: a publish the broker had not
 * confirmed when the connection dropped is sent again, and the broker may have taken it already.
 */
function expectOneResultEach(lab: FaultLab, ids: readonly string[]): void {
  const byJob = resultsByJob(lab.results);
  expect([...byJob.keys()].sort(), 'the jobs answered').toEqual([...ids].sort());
  expect(answeredTwice(byJob), 'jobs answered by two handler runs').toEqual([]);
  expect(copies(lab.results), 'copies beyond the publishes re-sent').toBeLessThanOrEqual(
    resent(lab),
  );
  const calls = callsPerKey(lab.prefix);
  expect(calls.size, 'jobs handled').toBe(ids.length);
  expect(
    [...calls].filter(([, count]) => count !== 1),
    'jobs handled twice',
  ).toEqual([]);
}

/** Log lines that show a channel closed by the broker, or any PRECONDITION_FAILED. */
function channelFaults(logs: readonly LogLine[]): LogLine[] {
  return logs.filter(
    (line) =>
      JSON.stringify(line).includes('PRECONDITION_FAILED') ||
      line.msg === 'consumer channel closed by the broker' ||
      line.msg === 'publish channel closed by the broker',
  );
}

describe('a worker whose broker connection fails', () => {
  it('gives each of 2,000 jobs exactly one result while its connection is cut every second', async () => {
    const lab = await open({ prefetch: 16, concurrency: 4 });
    let cuts = 0;
    const cutter = setInterval(() => {
      if (lab.proxy.connections === 0) return;
      lab.proxy.cut();
      cuts += 1;
    }, 1_000);

    const ids: string[] = [];
    try {
      // Spread over about ten seconds, so that jobs arrive across many cuts.
      for (let round = 0; round < 50; round += 1) {
        ids.push(...(await lab.publish(jobs(lab.prefix, `r${round}-`, 40))));
        await sleep(180);
      }
      await waitFor(() => resultsByJob(lab.results).size === ids.length, 'every result', 60_000);
    } finally {
      clearInterval(cutter);
    }
    await settled(lab);
    await sleep(300);

    expectOneResultEach(lab, ids);
    expect(lab.deadLetters).toHaveLength(0);
    expect(cuts).toBeGreaterThanOrEqual(8);
    expect(lab.logged('broker connection recovered').length).toBeGreaterThanOrEqual(8);
    expect(lab.consumerState()).toBe('consuming');
    expect(lab.counts()).toMatchObject({ succeeded: ids.length, deadLettered: 0, retried: 0 });
  }, 90_000);

  it('lets jobs running at a cut finish, publishes each result once, and keeps consuming on its new channel', async () => {
    const lab = await open({ prefetch: 5, concurrency: 5 });
    const running = await lab.publish(jobs(lab.prefix, 'running', 5, 300));
    const waiting = await lab.publish(jobs(lab.prefix, 'waiting', 10));
    await waitFor(() => callsPerKey(`${lab.prefix}-running`).size === 5, 'five running jobs');
    expect(lab.results).toHaveLength(0);

    lab.proxy.cut();
    await waitFor(() => lab.logged('broker connection recovered').length === 1, 'the recovery');
    const after = await lab.publish(jobs(lab.prefix, 'after', 10));
    const ids = [...running, ...waiting, ...after];
    await waitFor(() => resultsByJob(lab.results).size === ids.length, 'every result');
    await settled(lab);
    await sleep(300);

    expectOneResultEach(lab, ids);
    // Nothing was being published at the cut: not even a copy.
    expect(lab.results).toHaveLength(ids.length);
    // The running jobs were settled after the cut: those settles never reached the new channel.
    expect(
      lab.logged('settle dropped: channel closed, the broker redelivers').length,
    ).toBeGreaterThanOrEqual(5);
    expect(channelFaults(lab.logs)).toEqual([]);
    expect(lab.logged('consumer resumed')).toHaveLength(1);
    expect(lab.logged('broker connection lost')).toHaveLength(1);
    expect(lab.deadLetters).toHaveLength(0);
    expect(lab.consumerState()).toBe('consuming');
  });

  it('recovers a connection the broker closed (rabbitmqctl close_connection) and keeps consuming', async () => {
    const lab = await open({ prefetch: 4, concurrency: 2 });
    const before = await lab.publish(jobs(lab.prefix, 'before', 30, 50));
    await waitFor(() => lab.results.length >= 5, 'the first results');

    await closeConnectionNamed(lab.connectionName);
    await waitFor(() => lab.logged('broker connection recovered').length === 1, 'the recovery');
    const after = await lab.publish(jobs(lab.prefix, 'after', 10));
    const ids = [...before, ...after];
    await waitFor(() => resultsByJob(lab.results).size === ids.length, 'every result');
    await settled(lab);
    await sleep(300);

    expect(lab.logged('broker connection lost')[0]?.error).toMatch(/CONNECTION_FORCED/);
    expectOneResultEach(lab, ids);
    expect(channelFaults(lab.logs)).toEqual([]);
    expect(lab.deadLetters).toHaveLength(0);
    expect(lab.consumerState()).toBe('consuming');
  });

  it('holds results made while the broker is unreachable, and delivers each once it is back', async () => {
    const lab = await open({ prefetch: 5, concurrency: 5 });
    const running = await lab.publish(jobs(lab.prefix, 'running', 5, 300));
    const waiting = await lab.publish(jobs(lab.prefix, 'waiting', 5));
    await waitFor(() => callsPerKey(`${lab.prefix}-running`).size === 5, 'five running jobs');

    lab.proxy.refuse(true);
    lab.proxy.cut();
    // Each running job reaches its publishing step with no connection to publish on.
    const publishing = () =>
      lab.logs.filter((line) => line.msg === 'actor transitioned' && line.to === 'publishing');
    await waitFor(() => publishing().length >= 5, 'the running jobs to publish their results');
    const refusals = lab.logged('broker reconnect failed').length;
    await waitFor(
      () => lab.logged('broker reconnect failed').length >= refusals + 3,
      'more refused reconnects',
    );
    expect(lab.results).toHaveLength(0);
    expect(lab.consumerState()).toBe('consuming');

    lab.proxy.refuse(false);
    await waitFor(() => lab.logged('broker connection recovered').length === 1, 'the recovery');
    const ids = [...running, ...waiting];
    await waitFor(() => resultsByJob(lab.results).size === ids.length, 'every result');
    await settled(lab);
    await sleep(300);

    expectOneResultEach(lab, ids);
    // Nothing was being published at the cut: not even a copy.
    expect(lab.results).toHaveLength(ids.length);
    expect(channelFaults(lab.logs)).toEqual([]);
    expect(lab.deadLetters).toHaveLength(0);
    expect(lab.consumerState()).toBe('consuming');
  });
});
