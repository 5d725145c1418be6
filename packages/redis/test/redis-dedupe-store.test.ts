import { IllegalStateError } from '@warren/core';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RedisDedupeStore } from '../src/index.ts';
import { REDIS_URL, RedisFixture, sleep } from './support.ts';

const redis = new RedisFixture();

beforeEach(() => redis.start());
afterEach(() => redis.cleanUp());
afterAll(() => redis.stop());

describe('RedisDedupeStore', () => {
  it('answers claimed, then in-progress while the lease holds, then done after complete', async () => {
    const store = redis.store();

    expect(await store.claim('m-1', 60_000)).toBe('claimed');
    expect(await store.claim('m-1', 60_000)).toBe('in-progress');
    await store.complete('m-1', 60_000);
    expect(await store.claim('m-1', 60_000)).toBe('done');
  });

  it('gives exactly one claimed among 50 parallel claims of one id from two clients', async () => {
    const stores = [redis.store(), redis.store()];
    const ids = Array.from({ length: 20 }, (_, index) => `race-${index}`);

    for (const id of ids) {
      const claims = Array.from({ length: 50 }, (_, index) => stores[index % 2]!.claim(id, 60_000));
      const results = await Promise.all(claims);

      expect(results.filter((result) => result === 'claimed')).toHaveLength(1);
      expect(results.filter((result) => result === 'in-progress')).toHaveLength(49);
    }
  });

  it('lets another worker claim an id once its lease has expired', async () => {
    const [first, second] = [redis.store(), redis.store()];
    expect(await first.claim('m-1', 100)).toBe('claimed');
    expect(await second.claim('m-1', 100)).toBe('in-progress');

    await sleep(150);

    expect(await second.claim('m-1', 100)).toBe('claimed');
  });

  it('makes a released id claimable again at once', async () => {
    const store = redis.store();
    await store.claim('m-1', 60_000);

    await store.release('m-1');

    expect(await store.claim('m-1', 60_000)).toBe('claimed');
  });

  it('keeps done when a late release arrives after complete', async () => {
    const store = redis.store();
    await store.claim('m-1', 60_000);
    await store.complete('m-1', 60_000);

    await store.release('m-1');

    expect(await store.claim('m-1', 60_000)).toBe('done');
    expect(await redis.admin.get(`${redis.prefix}m-1`)).toBe('done');
  });

  it('forgets done once its TTL has passed', async () => {
    const store = redis.store();
    await store.claim('m-1', 60_000);
    await store.complete('m-1', 100);
    expect(await store.claim('m-1', 60_000)).toBe('done');

    await sleep(150);

    expect(await store.claim('m-1', 60_000)).toBe('claimed');
  });

  it('keeps one key per id under the prefix, expiring after the lease or the TTL', async () => {
    const store = redis.store();

    await store.claim('m-1', 30_000);
    const leaseLeft = await redis.admin.pttl(`${redis.prefix}m-1`);
    await store.complete('m-1', 90_000);
    const ttlLeft = await redis.admin.pttl(`${redis.prefix}m-1`);

    expect(await redis.keys()).toEqual([`${redis.prefix}m-1`]);
    expect(leaseLeft).toBeGreaterThan(25_000);
    expect(leaseLeft).toBeLessThanOrEqual(30_000);
    expect(ttlLeft).toBeGreaterThan(85_000);
    expect(ttlLeft).toBeLessThanOrEqual(90_000);
  });

  it('uses the default prefix warren:dedupe: when given none', async () => {
    const id = `default-prefix-${redis.prefix}`;
    const store = new RedisDedupeStore({ url: REDIS_URL });
    try {
      await store.claim(id, 60_000);

      expect(await redis.admin.get(`warren:dedupe:${id}`)).toBe('running');
    } finally {
      await store.close();
      await redis.admin.del(`warren:dedupe:${id}`);
    }
  });

  it('works on a client passed in and leaves it open on close', async () => {
    const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      const store = redis.store({ client });

      expect(await store.claim('m-1', 60_000)).toBe('claimed');
      await store.close();

      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });

  it('refuses a lease or TTL that is not a whole number of milliseconds above zero', async () => {
    const store = redis.store();

    await expect(store.claim('m-1', 0)).rejects.toThrow(
      'leaseMs: expected a whole number of milliseconds above 0, found 0',
    );
    await expect(store.complete('m-1', 1.5)).rejects.toThrow(RangeError);
    expect(await redis.keys()).toEqual([]);
  });

  it('refuses calls after close with an IllegalStateError', async () => {
    const store = redis.store();
    await store.claim('m-1', 60_000);

    await store.close();
    await store.close();

    await expect(store.claim('m-1', 60_000)).rejects.toThrow(IllegalStateError);
    await expect(store.release('m-1')).rejects.toThrow('release() after close()');
  });
});
