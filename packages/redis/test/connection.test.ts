import { inspect } from 'node:util';
import { ConfigError } from '@warren/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RedisDedupeStore } from '../src/index.ts';
import { closedPort, REDIS_URL, RedisFixture } from './support.ts';

const redis = new RedisFixture();

beforeEach(() => redis.start());
afterEach(() => redis.cleanUp());
afterAll(() => redis.stop());

describe('RedisDedupeStore connection failures', () => {
  it('fails a claim against a port where nothing listens, naming the URL without its password', async () => {
    const port = await closedPort();
    const store = redis.store({ url: `redis://warren:s3cret@127.0.0.1:${port}/0` });
    const started = Date.now();

    const error = await store.claim('m-1', 60_000).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );

    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(Error);
    expect(String(error)).toBe(
      `Error: Redis at redis://127.0.0.1:${port}/0: claim failed: cannot connect: ` +
        `connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    expect(inspect(error, { depth: 10 })).not.toContain('s3cret');
  });

  it('keeps the password out of the error and its cause when Redis refuses the credentials', async () => {
    const url = new URL(REDIS_URL);
    url.username = 'warren-test-no-such-user';
    url.password = 's3cret-password';
    const store = redis.store({ url: url.href });

    const error = await store.claim('m-1', 60_000).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );

    expect(String(error)).toMatch(/^Error: Redis at redis:\/\/[^@]+: claim failed: .*WRONGPASS/);
    expect(inspect(error, { depth: 10 })).not.toContain('s3cret-password');
  });

  it('refuses a URL that is not a Redis URL with a ConfigError that does not repeat it', () => {
    expect(() => new RedisDedupeStore({ url: 'http://user:s3cret@127.0.0.1' })).toThrow(
      ConfigError,
    );
    expect(() => new RedisDedupeStore({ url: 'not a url with s3cret' })).toThrow(
      'url: expected a redis:// or rediss:// URL with a host, found text that is not a URL',
    );
  });

  it('refuses a database that is not a number, and takes one that is', async () => {
    expect(() => new RedisDedupeStore({ url: 'redis://u:s3cret@127.0.0.1:6379/abc' })).toThrow(
      'url: expected a redis:// or rediss:// URL with a host, found the database "/abc", not a number',
    );
    for (const url of [
      'redis://127.0.0.1:6379',
      'redis://127.0.0.1:6379/',
      'redis://127.0.0.1/3',
    ]) {
      // Made without connecting (the client connects on first use).
      await new RedisDedupeStore({ url }).close();
    }
  });
});
