import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEntry, ConfigError, type ConnectionEvent } from '@warren/core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.ts';
import { openBrokerCredentials } from '../src/credentials.ts';
import { auditRotations } from '../src/credentials-audit.ts';
import { createTransport } from '../src/resources.ts';

const silent = pino({ level: 'silent' });
const CREDENTIALS = '{"username": "warren", "password": "s3cret"}';

function configError(value: Record<string, unknown>): string {
  try {
    parseConfig({ handlers: [{ module: 'x' }], ...value }, '/etc/warren');
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('broker credentials in the worker config', () => {
  it('refuses a password in broker.url, pointing to broker.credentials, without quoting it', () => {
    const message = configError({ broker: { url: 'amqp://warren:s3cret@rabbit:5672/jobs' } });
    expect(message).toMatch(/^config\.broker\.url: carries a password/);
    expect(message).toContain('broker.credentials');
    expect(message).not.toContain('s3cret');
    // A URL that is wrong in another way is not quoted either.
    expect(configError({ broker: { url: 'http://warren:s3cret@rabbit' } })).not.toContain('s3cret');
  });

  it('takes a URL naming a user, or none, beside a source of credentials', () => {
    const config = parseConfig(
      {
        handlers: [{ module: 'x' }],
        broker: { url: 'amqp://warren@rabbit:5672', credentials: { file: 'secrets/broker.json' } },
      },
      '/etc/warren',
    );
    expect(config.broker.credentials).toEqual({ file: '/etc/warren/secrets/broker.json' });
    expect(parseConfig({ handlers: [{ module: 'x' }] }, '/etc').broker.credentials).toBeUndefined();
  });

  it('asks for exactly one source, and its options only beside it', () => {
    expect(configError({ broker: { credentials: {} } })).toBe(
      'config.broker.credentials: expected exactly one of file, env and command, found none',
    );
    expect(configError({ broker: { credentials: { file: 'a', env: 'B' } } })).toBe(
      'config.broker.credentials: expected exactly one of file, env and command, found file and env',
    );
    expect(configError({ broker: { credentials: { env: 'B', refreshIntervalMs: 5_000 } } })).toBe(
      'config.broker.credentials.refreshIntervalMs: applies only with command',
    );
    expect(configError({ broker: { credentials: { command: [] } } })).toBe(
      'config.broker.credentials.command: expected at least 1 items, found an array of 0',
    );
  });
});

describe('the worker reading its broker credentials', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-worker-credentials-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  function configWith(credentials: Record<string, unknown>) {
    return parseConfig({ handlers: [{ module: 'x' }], broker: { credentials } }, dir);
  }

  it('reads them at start, and the transport logs in as their user', async () => {
    const config = configWith({ env: 'BROKER_CREDENTIALS' });
    const env = { BROKER_CREDENTIALS: CREDENTIALS };
    const provider = await openBrokerCredentials(config, env, silent);
    expect(provider?.username).toBe('warren');
    expect(await provider?.read()).toEqual({ username: 'warren', password: 's3cret' });

    const transport = await createTransport(config, env, silent);
    expect(transport.account).toBe('warren');
    await transport.close();
  });

  it('stops the worker at start on a missing or malformed secret, naming the setting', async () => {
    const config = configWith({ env: 'BROKER_CREDENTIALS' });
    await expect(openBrokerCredentials(config, {}, silent)).rejects.toThrow(
      'config.broker.credentials: environment variable BROKER_CREDENTIALS: expected it to be set, found it unset',
    );
    const malformed = openBrokerCredentials(config, { BROKER_CREDENTIALS: 's3cret' }, silent);
    await expect(malformed).rejects.toThrow(ConfigError);
    await expect(malformed).rejects.not.toThrow(/s3cret/);
  });

  it('refuses a password in AMQP_URL beside broker.credentials', async () => {
    const config = configWith({ env: 'BROKER_CREDENTIALS' });
    const env = { BROKER_CREDENTIALS: CREDENTIALS, AMQP_URL: 'amqp://other:pw@127.0.0.1:5672' };
    await expect(openBrokerCredentials(config, env, silent)).rejects.toThrow(
      /found a password in AMQP_URL too/,
    );
  });

  it('refuses, and never dials with, credentials that name another user', async () => {
    const path = join(dir, 'broker.json');
    await writeFile(path, CREDENTIALS);
    const config = configWith({ file: path });
    const refusals: string[] = [];
    const provider = await openBrokerCredentials(config, {}, silent, (username) =>
      refusals.push(username),
    );
    const rotations: number[] = [];
    const stop = provider!.watch!(() => rotations.push(1));
    try {
      await writeFile(path, '{"username": "intruder", "password": "x"}');
      await expect(provider!.read()).rejects.toThrow(
        /now names user intruder, and this worker logs in as warren/,
      );
      const deadline = Date.now() + 5_000;
      while (refusals.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(refusals).toEqual(['intruder']);
      expect(rotations).toEqual([]);
    } finally {
      stop();
    }
  });

  it('dials with the last credentials read when the secret cannot be read for a moment', async () => {
    const path = join(dir, 'flaky.json');
    await writeFile(path, CREDENTIALS);
    const provider = await openBrokerCredentials(configWith({ file: path }), {}, silent);
    await rm(path);
    expect(await provider?.read()).toEqual({ username: 'warren', password: 's3cret' });
  });
});

describe('the audit of credential rotations', () => {
  it('writes a line for a rotation and for a failed one, naming the user and never a password', () => {
    const entries: AuditEntry[] = [];
    const listen = auditRotations({ record: (entry) => entries.push(entry) }, silent, () => 0);
    const refused = new Error(
      'cannot connect to amqp://127.0.0.1:5672 as warren: Handshake terminated by server: 403 (ACCESS-REFUSED)',
    );
    const events: ConnectionEvent[] = [
      { type: 'rotation-failed', username: 'warren', attempt: 1, retryInMs: 1_000, cause: refused },
      { type: 'rotated', username: 'warren' },
      { type: 'recovered', attempts: 1, downtimeMs: 10 },
    ];
    for (const event of events) listen(event);

    expect(entries).toEqual([
      {
        time: '1970-01-01T00:00:00.000Z',
        event: 'warren.credentials.rotation-failed',
        decision: 'refused',
        reason: 'access-refused',
        identity: 'user:warren',
        message: `${refused.message}; the previous connection goes on, attempt 2 in 1000 ms`,
      },
      {
        time: '1970-01-01T00:00:00.000Z',
        event: 'warren.credentials.rotated',
        decision: 'accepted',
        identity: 'user:warren',
        message: 'the broker connection now logs in with new credentials',
      },
    ]);
  });
});
