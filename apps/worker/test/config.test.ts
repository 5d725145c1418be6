import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@warren/core';
import { defaultIntraOpThreads, type LocalInference } from '@warren/inference';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../src/config.ts';
import { createInference } from '../src/resources.ts';

function configError(value: unknown): string {
  try {
    parseConfig(value, '/etc/warren');
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the worker config', () => {
  it('fills defaults and resolves relative paths against the config file', () => {
    const config = parseConfig(
      {
        handlers: [{ module: './plugins/embed.ts' }],
        inference: { local: { modelPath: '../models' } },
      },
      '/etc/warren',
    );

    expect(config.handlers[0]).toEqual({
      module: '/etc/warren/plugins/embed.ts',
      prefetch: 16,
      concurrency: 1,
    });
    expect(config.inference.local.modelPath).toBe('/etc/models');
    expect(config.topology).toEqual({ prefix: 'warren', queueType: 'quorum' });
    expect(config.shutdown.drainTimeoutMs).toBe(30_000);
  });

  it('lets a broker section tune the connection without naming the URL', () => {
    const config = parseConfig(
      { handlers: [{ module: 'x' }], broker: { heartbeatSeconds: 5 } },
      '/etc/warren',
    );
    expect(config.broker).toMatchObject({ url: 'amqp://127.0.0.1:5672', heartbeatSeconds: 5 });
  });

  it('refuses a restart backoff whose cap is below its first delay, naming the field', () => {
    expect(
      configError({
        handlers: [{ module: 'x' }],
        supervisor: { backoff: { initialDelayMs: 5_000, maxDelayMs: 100 } },
      }),
    ).toBe(
      'config.supervisor.backoff.maxDelayMs: expected at least initialDelayMs (5000), found 100',
    );
  });

  it('names the field, what was expected and what was found', () => {
    expect(configError({ handlers: [{ module: 'x', prefetch: 0 }] })).toBe(
      'config.handlers[0].prefetch: expected at least 1, found 0',
    );
    expect(configError({ handlers: [{ module: 'x', prefetch: 'many' }] })).toBe(
      'config.handlers[0].prefetch: expected number, found "many"',
    );
    expect(configError({})).toBe('config.handlers: expected array, found nothing');
    expect(configError({ handlers: [{ module: 'x' }], inference: { use: 'cloud' } })).toBe(
      'config.inference.use: expected one of "local", "remote", found "cloud"',
    );
  });

  it('refuses a priority queue of the quorum type, and says what to do instead', () => {
    expect(configError({ handlers: [{ module: 'x' }], topology: { maxPriority: 5 } })).toMatch(
      /^config\.topology\.maxPriority: quorum queues have no priority on RabbitMQ 3\.10: set topology\.queueType "classic", or give urgent jobs a model type \(queue\) of their own$/,
    );
  });

  it('refuses a batch larger than the prefetch, naming both and nothing else', () => {
    const handler = { module: 'x', prefetch: 16, batch: { maxSize: 32 } };
    expect(configError({ handlers: [handler] })).toBe(
      "config.handlers[0].batch.maxSize: expected at most the handler's prefetch (16), found 32: " +
        'a batch cannot hold more jobs than the broker sends',
    );
  });

  it('refuses fields it does not know, so a typo is not silently ignored', () => {
    expect(configError({ handlers: [{ module: 'x', prefech: 4 }] })).toBe(
      'config.handlers[0]: unexpected field prefech',
    );
  });

  describe('read from a file', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'warren-config-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reports a file that is not JSON with its path', async () => {
      const path = join(dir, 'broken.json');
      await writeFile(path, '{ handlers: [] ');

      await expect(loadConfig(path)).rejects.toThrow(`config file ${path}: expected JSON, found`);
    });

    it('reports a missing file with its path', async () => {
      await expect(loadConfig(join(dir, 'absent.json'))).rejects.toThrow(ConfigError);
    });
  });
});

describe("the worker's local inference settings", () => {
  let emptyModels: string;

  beforeAll(async () => {
    emptyModels = await mkdtemp(join(tmpdir(), 'warren-no-models-'));
  });

  afterAll(async () => {
    await rm(emptyModels, { recursive: true, force: true });
  });

  /** The fields LocalInference logs when it fails to load a model with this `local` section. */
  async function loadFields(local: Record<string, unknown>): Promise<Record<string, unknown>> {
    const config = parseConfig(
      {
        handlers: [{ module: 'x' }],
        inference: { local: { modelPath: emptyModels, allowRemoteModels: false, ...local } },
      },
      '/etc/warren',
    );
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => void lines.push(JSON.parse(line)) },
    );
    const inference = (await createInference(config, {}, logger)) as LocalInference;
    await expect(inference.load('feature-extraction', 'absent')).rejects.toThrow(/absent/);
    const failed = lines.find((line) => line.msg === 'model load failed');
    if (failed === undefined)
      throw new Error(`no "model load failed" line in ${JSON.stringify(lines)}`);
    return failed;
  }

  it("passes allowSpinning and intraOpThreads to LocalInference's loads, spinning off unless asked", async () => {
    expect(await loadFields({})).toMatchObject({ allowSpinning: false });
    // Not the default on any machine: that would pass with the setting dropped.
    const intraOpThreads = defaultIntraOpThreads() + 1;
    expect(await loadFields({ allowSpinning: true, intraOpThreads })).toMatchObject({
      allowSpinning: true,
      intraOpThreads,
    });
    expect(
      configError({ handlers: [{ module: 'x' }], inference: { local: { allowSpinning: 'no' } } }),
    ).toBe('config.inference.local.allowSpinning: expected boolean, found "no"');
  });
});
