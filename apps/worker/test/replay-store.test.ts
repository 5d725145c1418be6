import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ConfigError, type Delivery, encodeJob, type Verdict } from '@warren/core';
import { KeySet, signatureHeaders } from '@warren/security';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/index.ts';
import { createDedupe } from '../src/resources.ts';
import { createReplayGuard, createVerifier, type WorkerReplayGuard } from '../src/signing.ts';

const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEYS = JSON.stringify({
  keys: [{ id: 'producer-1', alg: 'hmac-sha256', secret: randomBytes(32).toString('base64') }],
});

/** The smallest window the config allows: the ids this test leaves in Redis expire within it. */
const WINDOW_MS = 1_000;

const guards: WorkerReplayGuard[] = [];

afterEach(async () => {
  for (const guard of guards.splice(0)) await guard.close?.();
});

/** A verifier as one worker of a fleet makes it from its config, with its own replay guard. */
async function workerVerifier(replayStore: 'memory' | 'redis') {
  const config = parseConfig(
    {
      handlers: [{ module: ECHO }],
      dedupe: { redisUrlEnv: 'TEST_REDIS_URL' },
      security: { signing: { keysEnv: 'TEST_SIGNING_KEYS', windowMs: WINDOW_MS, replayStore } },
    },
    process.cwd(),
  );
  const env = { TEST_REDIS_URL: REDIS_URL, TEST_SIGNING_KEYS: KEYS };
  const guard = (await createReplayGuard(config, env))!;
  guards.push(guard);
  return (await createVerifier(config, env, [], guard))!;
}

/** A signed job's first delivery, as the broker hands it to whichever worker. */
function signedDelivery(): Delivery {
  const key = KeySet.fromJson(KEYS, 'test').get('producer-1')!;
  const { body, properties } = encodeJob({
    modelType: 'echo',
    tenant: 'acme',
    input: { text: 'hi' },
    messageId: `replay-${randomUUID()}`,
  });
  const headers = { ...properties.headers, ...signatureHeaders(key, body, properties) };
  return {
    body,
    properties: { ...properties, headers },
    exchange: 'warren.jobs',
    routingKey: 'echo.public',
    redelivered: false,
    deliveryTag: 1,
    queue: 'warren.jobs.echo',
  };
}

function reasonOf(verdict: Verdict): string | undefined {
  return verdict.accepted ? undefined : verdict.reason;
}

describe('the replay store', () => {
  it('with redis, refuses a replay that reaches another worker of the fleet', async () => {
    const [first, second] = [await workerVerifier('redis'), await workerVerifier('redis')];
    const job = signedDelivery();

    expect(await first.verify(job)).toEqual({ accepted: true, keyId: 'producer-1' });
    expect(reasonOf(await second.verify(job))).toBe('replayed');
    expect(reasonOf(await first.verify(job))).toBe('replayed');
  });

  it('in memory, protects one worker only: the other accepts the replay', async () => {
    const [first, second] = [await workerVerifier('memory'), await workerVerifier('memory')];
    const job = signedDelivery();

    expect((await first.verify(job)).accepted).toBe(true);
    expect(reasonOf(await first.verify(job))).toBe('replayed');
    expect((await second.verify(job)).accepted).toBe(true);
  });

  it('defaults to memory', () => {
    const config = parseConfig(
      { handlers: [{ module: ECHO }], security: { signing: { keysEnv: 'K' } } },
      process.cwd(),
    );
    expect(config.security.signing?.replayStore).toBe('memory');
  });

  it('rejects the verification when Redis cannot be reached, so the job is retried, not refused', async () => {
    const config = parseConfig(
      {
        handlers: [{ module: ECHO }],
        security: { signing: { keysEnv: 'TEST_SIGNING_KEYS', replayStore: 'redis' } },
      },
      process.cwd(),
    );
    // Port 1 on loopback: nothing listens there.
    const env = { REDIS_URL: 'redis://127.0.0.1:1', TEST_SIGNING_KEYS: KEYS };
    const guard = (await createReplayGuard(config, env))!;
    guards.push(guard);
    const verifier = (await createVerifier(config, env, [], guard))!;

    await expect(verifier.verify(signedDelivery())).rejects.toThrow(
      'Redis at redis://127.0.0.1:1: seen failed: cannot connect',
    );
  });

  it('names the variable a Redis URL came from when it refuses the URL, for the guard and the dedupe store', async () => {
    const config = parseConfig(
      {
        handlers: [{ module: ECHO }],
        dedupe: { store: 'redis', redisUrlEnv: 'TEST_REDIS_URL' },
        security: { signing: { keysEnv: 'TEST_SIGNING_KEYS', replayStore: 'redis' } },
      },
      process.cwd(),
    );
    const env = { TEST_REDIS_URL: 'not a url', TEST_SIGNING_KEYS: KEYS };
    const named =
      'environment variable TEST_REDIS_URL (config.dedupe.redisUrlEnv): url: expected a redis:// ';

    await expect(createReplayGuard(config, env)).rejects.toThrow(ConfigError);
    await expect(createReplayGuard(config, env)).rejects.toThrow(named);
    await expect(createDedupe(config, env, undefined)).rejects.toThrow(named);
  });
});
