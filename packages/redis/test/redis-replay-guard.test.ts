import { inspect } from 'node:util';
import { IllegalStateError } from '@warren/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RedisReplayGuard, type RedisReplayGuardOptions } from '../src/index.ts';
import { closedPort, REDIS_URL, RedisFixture, sleep } from './support.ts';

const redis = new RedisFixture();
const guards: RedisReplayGuard[] = [];

/** A guard on its own connection under this test's key prefix, closed after the test. */
function guard(options: RedisReplayGuardOptions = { url: REDIS_URL }): RedisReplayGuard {
  const made = new RedisReplayGuard({ keyPrefix: redis.prefix, ...options });
  guards.push(made);
  return made;
}

beforeEach(() => redis.start());
afterEach(async () => {
  for (const made of guards.splice(0)) await made.close();
  await redis.cleanUp();
});
afterAll(() => redis.stop());

describe('RedisReplayGuard', () => {
  it('says an id is new once, then seen, to every guard on the same Redis', async () => {
    const [first, second] = [guard(), guard()];
    const expiresAt = Date.now() + 60_000;

    expect(await first.seen('m-1', expiresAt, Date.now())).toBe(false);
    expect(await second.seen('m-1', expiresAt, Date.now())).toBe(true);
    expect(await first.seen('m-1', expiresAt, Date.now())).toBe(true);
    expect(await second.seen('m-2', expiresAt, Date.now())).toBe(false);
  });

  it('lets exactly one of 50 parallel first sightings from two clients through', async () => {
    const guards = [guard(), guard()];
    const expiresAt = Date.now() + 60_000;

    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, index) => guards[index % 2]!.seen('race', expiresAt, 0)),
    );

    expect(answers.filter((seen) => !seen)).toHaveLength(1);
  });

  it('keeps an id until its expiry, which Redis enforces', async () => {
    const made = guard();
    const expiresAt = Date.now() + 150;

    expect(await made.seen('m-1', expiresAt, Date.now())).toBe(false);
    const ttl = await redis.admin.pttl(`${redis.prefix}m-1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(150);

    await sleep(250);

    expect(await redis.keys()).toEqual([]);
    expect(await made.seen('m-1', Date.now() + 60_000, Date.now())).toBe(false);
  });

  it('refuses an expiry that is not epoch milliseconds', async () => {
    await expect(guard().seen('m-1', Number.NaN, 0)).rejects.toThrow(RangeError);
  });

  it('fails a call after close, and leaves a client it was given open', async () => {
    const made = guard({ client: redis.admin });
    await made.close();

    await expect(made.seen('m-1', Date.now() + 1_000, 0)).rejects.toThrow(IllegalStateError);
    expect(await redis.admin.ping()).toBe('PONG');
  });

  it('fails against a port where nothing listens, naming the URL without its password', async () => {
    const port = await closedPort();
    const made = guard({ url: `redis://warren:s3cret@127.0.0.1:${port}/0` });

    const error = await made.seen('m-1', Date.now() + 1_000, 0).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );

    expect(String(error)).toBe(
      `Error: Redis at redis://127.0.0.1:${port}/0: seen failed: cannot connect: ` +
        `connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    expect(inspect(error, { depth: 10 })).not.toContain('s3cret');
  });
});
