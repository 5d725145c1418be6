import { type ClaimResult, ConfigError, type DedupeStore, IllegalStateError } from '@warren/core';
import { Redis } from 'ioredis';
import { CLAIM_SCRIPT, DONE, RELEASE_SCRIPT } from './scripts.ts';
import { redactRedisUrl, redisUrlProblem } from './url.ts';

/** The Redis a {@link RedisDedupeStore} dials when given neither a URL nor a client. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** What every dedupe key starts with unless told otherwise. */
export const DEFAULT_DEDUPE_KEY_PREFIX = 'warren:dedupe:';

/** How long a store-made client waits for a TCP connection before counting the attempt failed. */
const CONNECT_TIMEOUT_MS = 5_000;
/** How long a store-made client waits for one reply; a claim must not hang a job forever. */
const COMMAND_TIMEOUT_MS = 5_000;
/** Reconnects a pending command waits through before it fails. */
const MAX_RETRIES_PER_REQUEST = 1;

/** Where the store keeps its keys. */
interface KeyOptions {
  /** Prepended to every message id to make its key. Default {@link DEFAULT_DEDUPE_KEY_PREFIX}. */
  keyPrefix?: string;
}

/**
 * Options for a {@link RedisDedupeStore}: a URL to dial (the store then owns the client and quits
 * it on close), or a client of your own, which the store uses as it is and never closes.
 */
export type RedisDedupeStoreOptions = KeyOptions &
  (
    | {
        /** `redis://[user:password@]host[:port][/db]` or `rediss://…`; errors show it redacted. */
        url?: string;
        client?: never;
      }
    | {
        /** A client whose lifecycle stays with the caller. */
        client: Redis;
        url?: never;
      }
  );

/**
 * A {@link DedupeStore} in Redis, shared by every worker that uses the same Redis and key prefix.
 * Each call is one round trip; claim and release are Lua scripts, so they are atomic. Redis
 * expires the keys, so leases and TTLs do not depend on the workers' clocks.
 *
 * A failing call rejects with an `Error` that names the Redis by its redacted URL and never
 * carries the password (ioredis puts the AUTH arguments on its errors, so they are not passed on).
 *
 * @example
 * const store = new RedisDedupeStore({ url: process.env.REDIS_URL });
 * if ((await store.claim(messageId, 300_000)) === 'claimed') {
 *   // handle, publish and confirm the result, then:
 *   await store.complete(messageId, 86_400_000);
 * }
 */
export class RedisDedupeStore implements DedupeStore {
  readonly #client: Redis;
  readonly #owned: boolean;
  readonly #keyPrefix: string;
  /** The Redis as errors name it: a redacted URL, or host and port of a given client. */
  readonly #where: string;
  #lastConnectionError: Error | undefined;
  #closed = false;

  constructor(options: RedisDedupeStoreOptions = {}) {
    this.#keyPrefix = options.keyPrefix ?? DEFAULT_DEDUPE_KEY_PREFIX;

    if (options.client !== undefined) {
      this.#client = options.client;
      this.#owned = false;
      this.#where = describeClient(options.client);
      return;
    }

    const url = options.url ?? DEFAULT_REDIS_URL;
    const problem = redisUrlProblem(url);
    if (problem !== undefined) {
      throw new ConfigError(
        `url: expected a redis:// or rediss:// URL with a host, found ${problem}`,
      );
    }
    this.#client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    this.#owned = true;
    this.#where = redactRedisUrl(url);
    // Without a listener ioredis prints connection errors to the console; they reach the caller
    // instead, through the command that fails.
    this.#client.on('error', (error: Error) => {
      this.#lastConnectionError = error;
    });
    this.#client.on('ready', () => {
      this.#lastConnectionError = undefined;
    });
  }

  async claim(messageId: string, leaseMs: number): Promise<ClaimResult> {
    this.#assertOpen('claim');
    assertDuration('leaseMs', leaseMs);

    const result = await this.#call('claim', () =>
      this.#client.eval(CLAIM_SCRIPT, 1, this.#key(messageId), leaseMs),
    );
    if (!isClaimResult(result)) {
      throw new Error(`Redis at ${this.#where}: claim answered ${JSON.stringify(result)}`);
    }
    return result;
  }

  async complete(messageId: string, ttlMs: number): Promise<void> {
    this.#assertOpen('complete');
    assertDuration('ttlMs', ttlMs);

    await this.#call('complete', () => this.#client.set(this.#key(messageId), DONE, 'PX', ttlMs));
  }

  async release(messageId: string): Promise<void> {
    this.#assertOpen('release');

    await this.#call('release', () => this.#client.eval(RELEASE_SCRIPT, 1, this.#key(messageId)));
  }

  /** Quits the client if the store made it; a client passed in stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#owned) return;

    if (this.#client.status !== 'ready') {
      this.#client.disconnect();
      return;
    }
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }

  #key(messageId: string): string {
    return `${this.#keyPrefix}${messageId}`;
  }

  async #call<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw this.#failure(operation, error);
    }
  }

  /**
   * An error naming the Redis and the reason. The cause keeps only the name and message of what
   * ioredis threw: its errors hold the failed command's arguments, which for AUTH is the password.
   */
  #failure(operation: string, error: unknown): Error {
    const original = error instanceof Error ? error : new Error(String(error));
    const connection = this.#client.status === 'ready' ? undefined : this.#lastConnectionError;
    const reason =
      connection === undefined ? original.message : `cannot connect: ${connection.message}`;
    const cause = new Error(original.message);
    cause.name = original.name;
    return new Error(`Redis at ${this.#where}: ${operation} failed: ${reason}`, { cause });
  }

  #assertOpen(call: string): void {
    if (this.#closed) throw new IllegalStateError(`Redis dedupe store: ${call}() after close()`);
  }
}

function isClaimResult(value: unknown): value is ClaimResult {
  return value === 'claimed' || value === 'in-progress' || value === 'done';
}

function describeClient(client: Redis): string {
  const { host, port } = client.options;
  return host === undefined ? 'the given client' : `redis://${host}:${port ?? 6379}`;
}

/** Throws a `RangeError` unless `value` is a whole number of milliseconds above zero. */
function assertDuration(name: string, value: number): void {
  if (Number.isSafeInteger(value) && value > 0) return;
  throw new RangeError(`${name}: expected a whole number of milliseconds above 0, found ${value}`);
}
