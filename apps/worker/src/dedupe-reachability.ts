import type { ClaimResult, DedupeStore } from '@warren/core';

/**
 * A dedupe store outside the process (Redis, or one the caller passed in) that remembers whether
 * its last call reached it, for `/readyz`: while it cannot be reached the worker takes jobs only
 * to retry them (`WARREN_DEDUPE_UNAVAILABLE`), so it is not ready. The next call that succeeds
 * makes it ready again; with no jobs arriving, nothing calls the store, and it stays as it was.
 */
export class ReachabilityTracked implements DedupeStore {
  readonly #store: DedupeStore;
  #reachable = true;

  constructor(store: DedupeStore) {
    this.#store = store;
  }

  /** False after a call that failed, until one succeeds. */
  get reachable(): boolean {
    return this.#reachable;
  }

  claim(messageId: string, leaseMs: number): Promise<ClaimResult> {
    return this.#track(this.#store.claim(messageId, leaseMs));
  }

  complete(messageId: string, ttlMs: number): Promise<void> {
    return this.#track(this.#store.complete(messageId, ttlMs));
  }

  release(messageId: string): Promise<void> {
    return this.#track(this.#store.release(messageId));
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  async #track<T>(call: Promise<T>): Promise<T> {
    try {
      const value = await call;
      this.#reachable = true;
      return value;
    } catch (error) {
      this.#reachable = false;
      throw error;
    }
  }
}
