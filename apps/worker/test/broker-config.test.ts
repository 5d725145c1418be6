import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ConfigError } from '@warren/core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.ts';
import { Worker } from '../src/index.ts';
import { answeredTwice, type FaultLab, resultsByJob, startFaultLab } from './fault-lab.ts';
import { labCalls } from './fixtures/lab.ts';
import { BrokerProbe, brokerEnv, testBroker, uniquePrefix, waitFor } from './support.ts';

function brokerConfig(broker: Record<string, unknown>) {
  return parseConfig(
    { broker: { url: 'amqp://rabbit:5672', ...broker }, handlers: [{ module: 'x' }] },
    '/etc/warren',
  );
}

function configError(broker: Record<string, unknown>): string {
  try {
    brokerConfig(broker);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the broker section of the worker config', () => {
  it('leaves the transport settings to the transport when absent', () => {
    expect(brokerConfig({}).broker).toEqual({
      url: 'amqp://rabbit:5672',
      consumerTimeoutMs: 1_800_000,
    });
  });

  it('takes heartbeat, connect timeout, recovery and publish buffer settings as given', () => {
    const settings = {
      heartbeatSeconds: 15,
      connectTimeoutMs: 2_000,
      recovery: {
        initialDelayMs: 250,
        multiplier: 3,
        maxDelayMs: 10_000,
        jitter: 0.2,
        giveUpAfterMs: 0,
      },
      publishBuffer: { maxMessages: 500, maxBytes: 1_048_576 },
    };

    expect(brokerConfig(settings).broker).toEqual({
      url: 'amqp://rabbit:5672',
      consumerTimeoutMs: 1_800_000,
      ...settings,
    });
    expect(brokerConfig({ recovery: { jitter: 0 } }).broker.recovery).toEqual({ jitter: 0 });
  });

  it('names the field, what was expected and what was found', () => {
    expect(configError({ heartbeatSeconds: -1 })).toBe(
      'config.broker.heartbeatSeconds: expected at least 0, found -1',
    );
    expect(configError({ heartbeatSeconds: 70_000 })).toBe(
      'config.broker.heartbeatSeconds: expected at most 65535, found 70000',
    );
    expect(configError({ connectTimeoutMs: 0 })).toBe(
      'config.broker.connectTimeoutMs: expected at least 1, found 0',
    );
    expect(configError({ recovery: { jitter: 1.5 } })).toBe(
      'config.broker.recovery.jitter: expected at most 1, found 1.5',
    );
    expect(configError({ recovery: { multiplier: 0.5 } })).toBe(
      'config.broker.recovery.multiplier: expected at least 1, found 0.5',
    );
    expect(configError({ recovery: { giveUpAfterMs: 'never' } })).toBe(
      'config.broker.recovery.giveUpAfterMs: expected number, found "never"',
    );
    expect(configError({ publishBuffer: { maxMessages: 0 } })).toBe(
      'config.broker.publishBuffer.maxMessages: expected at least 1, found 0',
    );
  });

  it('refuses a maximum reconnect delay below the first, naming the field that was set', () => {
    expect(configError({ recovery: { initialDelayMs: 1_000, maxDelayMs: 500 } })).toBe(
      'config.broker.recovery.maxDelayMs: expected at least initialDelayMs (1000), found 500',
    );
    expect(configError({ recovery: { initialDelayMs: 10_000 } })).toBe(
      'config.broker.recovery.initialDelayMs: expected at most maxDelayMs (5000, its default), found 10000',
    );
  });

  it('refuses fields it does not know, so a typo is not silently ignored', () => {
    expect(configError({ recovery: { maxDelay: 100 } })).toBe(
      'config.broker.recovery: unexpected field maxDelay',
    );
    expect(configError({ publishBuffer: { messages: 100 } })).toBe(
      'config.broker.publishBuffer: unexpected field messages',
    );
    expect(configError({ heartbeat: 10 })).toBe('config.broker: unexpected field heartbeat');
  });
});

describe('a worker started with broker settings', () => {
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

  it('asks the broker for its heartbeat, under its connection name', async () => {
    const prefix = uniquePrefix();
    const connectionName = `warren-test-${prefix}`;
    const config = parseConfig(
      {
        broker: { ...testBroker(), connectionName, heartbeatSeconds: 7 },
        topology: { prefix },
        handlers: [{ module: new URL('./fixtures/echo.ts', import.meta.url).pathname }],
      },
      process.cwd(),
    );
    const env = brokerEnv();
    const worker = await Worker.start({ config, logger: pino({ level: 'silent' }), env });
    try {
      expect(await negotiatedHeartbeat(connectionName)).toBe(7);
    } finally {
      await worker.stop();
      await probe.deleteTopology(prefix, ['echo']);
    }
  });

  it('gives up at once with giveUpAfterMs 0, and the worker escalates and ends not ok', async () => {
    const lab = await startFaultLab(probe, {
      prefetch: 4,
      concurrency: 1,
      broker: { recovery: { giveUpAfterMs: 0 } },
    });
    labs.push(lab);

    lab.proxy.cut();
    const exit = await lab.worker.exited;

    expect(exit.ok).toBe(false);
    expect(lab.logged('broker connection not recovered; giving up')).toHaveLength(1);
    expect(lab.logged('supervisor escalated; stopping the worker')).toHaveLength(1);
    expect(lab.logged('broker connection recovered')).toHaveLength(0);
  });

  it('refuses results beyond its publish buffer while disconnected, restarts the consumer and still answers every job once', async () => {
    const lab = await startFaultLab(probe, {
      prefetch: 3,
      concurrency: 3,
      broker: { publishBuffer: { maxMessages: 1 } },
    });
    labs.push(lab);
    const ids = await lab.publish(
      [0, 1, 2].map((n) => ({ key: `${lab.prefix}-running${n}`, sleepMs: 300 })),
    );
    await waitFor(
      () => labCalls().filter((call) => call.key.startsWith(lab.prefix)).length === 3,
      'three running jobs',
    );

    lab.proxy.refuse(true);
    lab.proxy.cut();
    // One result waits in the buffer; the next is refused at once, and its consumer crashes.
    await waitFor(() => lab.logged('actor crashed; restarting it').length > 0, 'the crash');
    // WARREN_PUBLISH_FAILED, caused by the full buffer.
    expect(JSON.stringify(lab.logged('actor crashed; restarting it'))).toContain(
      'PublishBufferFullError',
    );
    lab.proxy.refuse(false);
    await waitFor(() => resultsByJob(lab.results).size === ids.length, 'every result', 15_000);

    const byJob = resultsByJob(lab.results);
    expect([...byJob.keys()].sort()).toEqual([...ids].sort());
    expect(answeredTwice(byJob)).toEqual([]);
    expect(lab.deadLetters).toHaveLength(0);
    expect(lab.consumerState()).toBe('consuming');
  });
});

/** The heartbeat (s) the broker agreed on for the connection named `connectionName`. */
async function negotiatedHeartbeat(connectionName: string): Promise<number> {
  const listing = ['list_connections', 'timeout', 'client_properties', '-q', '--no-table-headers'];
  const { stdout } = await promisify(execFile)('rabbitmqctl', listing);
  const ours = stdout
    .split('\n')
    .find((line) => line.includes(`{"connection_name","${connectionName}"}`));
  if (ours === undefined) throw new Error(`no broker connection named ${connectionName}`);
  return Number(ours.split('\t')[0]);
}
