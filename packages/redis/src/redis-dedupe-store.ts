import type { ClaimResult, DedupeStore } from '@warren/core';
import { type RedisClientOptions, RedisConnection } from './redis-connection.ts';
import { CLAIM_SCRIPT, DONE, RELEASE_SCRIPT } from './scripts.ts';

/** What every dedupe key starts with unless told otherwise. */
export const DEFAULT_DEDUPE_KEY_PREFIX = 'warren:dedupe:';

/** Where the store keeps its keys. */
interface KeyOptions {
  /** Prepended to every message id to make its key. Default {@link DEFAULT_DEDUPE_KEY_PREFIX}. */
  keyPrefix?: string;
}

/**
 * Options for a {@link RedisDedupeStore}: a URL to dial (the store then owns the client and quits
 * it on close), or a client of your own, which the store uses as it is and never closes.
 */
export type RedisDedupeStoreOptions = KeyOptions & RedisClientOptions;

/**
 * A {@link DedupeStore} in Redis, shared by every worker that uses the same Redis and key prefix.
 * Each call is one round trip; claim and release are Lua scripts, so they are atomic. Redis
 * expires the keys, so leases and TTLs do not depend on the workers' clocks.
 *
 * A failing call rejects with an `Error` that names the Redis by its redacted URL and never
 * carries the password (see {@link RedisConnection}).
 *
 * @example
 * const store = new RedisDedupeStore({ url: process.env.REDIS_URL });
 * if ((await store.claim(messageId, 300_000)) === 'claimed') {
 *   // handle, publish and confirm the result, then:
 *   await store.complete(messageId, 86_400_000);
 * }
 */
export class RedisDedupeStore implements DedupeStore {
  readonly #redis: RedisConnection;
  readonly #keyPrefix: string;

  constructor(options: RedisDedupeStoreOptions = {}) {
    this.#keyPrefix = options.keyPrefix ?? DEFAULT_DEDUPE_KEY_PREFIX;
    this.#redis = new RedisConnection(options, 'Redis dedupe store');
  }

  async claim(messageId: string, leaseMs: number): Promise<ClaimResult> {
    this.#redis.assertOpen('claim');
    assertDuration('leaseMs', leaseMs);

    const result = await this.#redis.call('claim', (client) =>
      client.eval(CLAIM_SCRIPT, 1, this.#key(messageId), leaseMs),
    );
    if (!isClaimResult(result)) {
      throw new Error(`Redis at ${this.#redis.where}: claim answered ${JSON.stringify(result)}`);
    }
    return result;
  }

  async complete(messageId: string, ttlMs: number): Promise<void> {
    this.#redis.assertOpen('complete');
    assertDuration('ttlMs', ttlMs);

    await this.#redis.call('complete', (client) =>
      client.set(this.#key(messageId), DONE, 'PX', ttlMs),
    );
  }

  async release(messageId: string): Promise<void> {
    await this.#redis.call('release', (client) =>
      client.eval(RELEASE_SCRIPT, 1, this.#key(messageId)),
    );
  }

  /** Quits the client if the store made it; a client passed in stays open. */
  close(): Promise<void> {
    return this.#redis.close();
  }

  #key(messageId: string): string {
    return `${this.#keyPrefix}${messageId}`;
  }
}

function isClaimResult(value: unknown): value is ClaimResult {
  return value === 'claimed' || value === 'in-progress' || value === 'done';
}

/** Throws a `RangeError` unless `value` is a whole number of milliseconds above zero. */
function assertDuration(name: string, value: number): void {
  if (Number.isSafeInteger(value) && value > 0) return;
  throw new RangeError(`${name}: expected a whole number of milliseconds above 0, found ${value}`);
}
