import { ConfigError, IllegalStateError } from '@warren/core';
import { Redis } from 'ioredis';
import { redactRedisUrl, redisUrlProblem } from './url.ts';

/** The Redis a store dials when given neither a URL nor a client. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** How long a store-made client waits for a TCP connection before counting the attempt failed. */
const CONNECT_TIMEOUT_MS = 5_000;
/** How long a store-made client waits for one reply; a call must not hang a job forever. */
const COMMAND_TIMEOUT_MS = 5_000;
/** Reconnects a pending command waits through before it fails. */
const MAX_RETRIES_PER_REQUEST = 1;

/**
 * How a store reaches Redis: a URL to dial (the store then owns the client and quits it on
 * close), or a client of your own, which the store uses as it is and never closes.
 */
export type RedisClientOptions =
  | {
      /** `redis://[user:password@]host[:port][/db]` or `rediss://…`; errors show it redacted. */
      url?: string;
      client?: never;
    }
  | {
      /** A client whose lifecycle stays with the caller. */
      client: Redis;
      url?: never;
    };

/**
 * One store's hold on Redis, shared by Warren's Redis stores: the client (made from a URL, or
 * given), its errors turned into ones that name the Redis by its redacted URL and never carry the
 * password (ioredis puts the AUTH arguments on its errors, so they are not passed on), and close.
 */
export class RedisConnection {
  readonly client: Redis;
  readonly #owned: boolean;
  /** The Redis as errors name it: a redacted URL, or host and port of a given client. */
  readonly #where: string;
  /** Names the store in errors for calls after close. */
  readonly #name: string;
  #lastConnectionError: Error | undefined;
  #closed = false;

  constructor(options: RedisClientOptions, name: string) {
    this.#name = name;
    if (options.client !== undefined) {
      this.client = options.client;
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
    this.client = new Redis(url, {
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
    this.client.on('error', (error: Error) => {
      this.#lastConnectionError = error;
    });
    this.client.on('ready', () => {
      this.#lastConnectionError = undefined;
    });
  }

  /** The Redis as errors name it. */
  get where(): string {
    return this.#where;
  }

  /** Throws {@link IllegalStateError} once closed; before a call's arguments are checked. */
  assertOpen(operation: string): void {
    if (this.#closed) throw new IllegalStateError(`${this.#name}: ${operation}() after close()`);
  }

  /** Runs `command`, or rejects with an error naming the Redis, the operation and the reason. */
  async call<T>(operation: string, command: (client: Redis) => Promise<T>): Promise<T> {
    this.assertOpen(operation);
    try {
      return await command(this.client);
    } catch (error) {
      throw this.#failure(operation, error);
    }
  }

  /** Quits the client if this connection made it; a client passed in stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#owned) return;

    if (this.client.status !== 'ready') {
      this.client.disconnect();
      return;
    }
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /**
   * An error naming the Redis and the reason. The cause keeps only the name and message of what
   * ioredis threw: its errors hold the failed command's arguments, which for AUTH is the password.
   */
  #failure(operation: string, error: unknown): Error {
    const original = error instanceof Error ? error : new Error(String(error));
    const connection = this.client.status === 'ready' ? undefined : this.#lastConnectionError;
    const reason =
      connection === undefined ? original.message : `cannot connect: ${connection.message}`;
    const cause = new Error(original.message);
    cause.name = original.name;
    return new Error(`Redis at ${this.#where}: ${operation} failed: ${reason}`, { cause });
  }
}

function describeClient(client: Redis): string {
  const { host, port } = client.options;
  return host === undefined ? 'the given client' : `redis://${host}:${port ?? 6379}`;
}
