import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { RedisDedupeStore, type RedisDedupeStoreOptions, redactRedisUrl } from '../src/index.ts';

/** The Redis the tests run against; a test that finds none fails. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Everything one test file needs from Redis: stores closed after each test, a key prefix no
 * other test uses, whose keys are deleted after each test, and a plain client for looking at
 * Redis from outside the store.
 */
export class RedisFixture {
  readonly admin = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 100,
  });
  #prefix = newPrefix();
  #connectionError: Error | undefined;
  readonly #stores: RedisDedupeStore[] = [];

  constructor() {
    // Failures reach the tests through the commands that fail, not as unhandled events.
    this.admin.on('error', (error: Error) => {
      this.#connectionError = error;
    });
  }

  /** This test's key prefix. */
  get prefix(): string {
    return this.#prefix;
  }

  /**
   * Pings Redis; run before each test, so that without Redis every test fails (a failing
   * `beforeAll` would only mark them skipped).
   */
  async start(): Promise<void> {
    try {
      await this.admin.ping();
    } catch (cause) {
      const reason = this.#connectionError?.message ?? String(cause);
      throw new Error(
        `these tests need Redis at ${redactRedisUrl(REDIS_URL)} (set REDIS_URL): ${reason}`,
      );
    }
  }

  /** A store on its own connection under this test's prefix, closed after the test. */
  store(options: RedisDedupeStoreOptions = { url: REDIS_URL }): RedisDedupeStore {
    const store = new RedisDedupeStore({ keyPrefix: this.#prefix, ...options });
    this.#stores.push(store);
    return store;
  }

  /** Closes the test's stores, deletes its keys and picks a fresh prefix for the next test. */
  async cleanUp(): Promise<void> {
    for (const store of this.#stores.splice(0)) await store.close();
    const keys = await this.keys();
    if (keys.length > 0) await this.admin.del(...keys);
    this.#prefix = newPrefix();
  }

  /** Every key under this test's prefix. */
  async keys(): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.admin.scan(
        cursor,
        'MATCH',
        `${this.#prefix}*`,
        'COUNT',
        500,
      );
      found.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return found;
  }

  async stop(): Promise<void> {
    this.admin.disconnect();
  }
}

function newPrefix(): string {
  return `warren-test:${randomUUID()}:`;
}

/** A port on 127.0.0.1 where nothing listens: bound by the OS, then let go. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port was bound');
  return address.port;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
