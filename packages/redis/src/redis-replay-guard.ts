import { type RedisClientOptions, RedisConnection } from './redis-connection.ts';

/** What every replay key starts with unless told otherwise. */
export const DEFAULT_REPLAY_KEY_PREFIX = 'warren:replay:';

/**
 * Options for a {@link RedisReplayGuard}: a URL to dial (the guard then owns the client and quits
 * it on close), or a client of your own, which it uses as it is and never closes.
 */
export type RedisReplayGuardOptions = RedisClientOptions & {
  /** Prepended to every message id to make its key. Default {@link DEFAULT_REPLAY_KEY_PREFIX}. */
  keyPrefix?: string;
};

/**
 * A replay guard in Redis for `@warren/security`'s `SignatureVerifier` (its `ReplayGuard`, which
 * this matches without depending on that package), shared by every worker on the same Redis and
 * key prefix: a signed job accepted by one worker is refused as `replayed` by all the others
 * while its window lasts, where a guard in memory protects one worker only.
 *
 * Each call is one `SET key 1 NX PXAT expiresAt`: atomic, so of two workers that see the same
 * job at once exactly one accepts it, and Redis forgets the id when its window ends. The expiry
 * is an absolute time read by the Redis server's clock, which should be kept near the workers'.
 *
 * A failing call rejects with an `Error` that names the Redis by its redacted URL and never
 * carries the password; the verifier's job is then retried, not refused.
 */
export class RedisReplayGuard {
  readonly #redis: RedisConnection;
  readonly #keyPrefix: string;

  constructor(options: RedisReplayGuardOptions = {}) {
    this.#keyPrefix = options.keyPrefix ?? DEFAULT_REPLAY_KEY_PREFIX;
    this.#redis = new RedisConnection(options, 'Redis replay guard');
  }

  /**
   * Records `messageId` until `expiresAt` (epoch ms); true when it was recorded already and has
   * not expired, that is, when this delivery is a replay. `now` is not needed: Redis keeps time.
   */
  async seen(messageId: string, expiresAt: number, _now?: number): Promise<boolean> {
    this.#redis.assertOpen('seen');
    if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0) {
      throw new RangeError(`expiresAt: expected epoch milliseconds above 0, found ${expiresAt}`);
    }
    const set = await this.#redis.call('seen', (client) =>
      client.set(`${this.#keyPrefix}${messageId}`, '1', 'PXAT', expiresAt, 'NX'),
    );
    return set === null;
  }

  /** Quits the client if the guard made it; a client passed in stays open. */
  close(): Promise<void> {
    return this.#redis.close();
  }
}
