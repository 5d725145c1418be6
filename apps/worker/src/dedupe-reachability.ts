import type { ClaimResult, DedupeStore } from '@warren/core';

/** How often a store out of reach is tried while no job calls it, unless told otherwise. */
const PROBE_EVERY_MS = 5_000;

/** The id a probe releases: never claimed, so releasing it changes nothing in the store. */
const PROBE_ID = 'warren.reachability-probe';

/**
 * A dedupe store outside the process (Redis, or one the caller passed in) that remembers whether
 * its latest call reached it, for `/readyz`: while it cannot be reached the worker takes jobs
 * only to retry them (`WARREN_DEDUPE_UNAVAILABLE`), so it is not ready. While it is out of reach
 * it is probed (a `release` of an id never claimed) every few seconds, so that an idle worker
 * becomes ready again when the store is back, not only at its next job.
 */
export class ReachabilityTracked implements DedupeStore {
  readonly #store: DedupeStore;
  #reachable = true;
  /** Calls started, and the latest of them that has settled: an older one reports nothing. */
  #started = 0;
  #settled = 0;
  #probe: NodeJS.Timeout | undefined;
  #stopped = false;

  readonly #probeEveryMs: number;

  constructor(store: DedupeStore, options: { probeEveryMs?: number } = {}) {
    this.#store = store;
    this.#probeEveryMs = options.probeEveryMs ?? PROBE_EVERY_MS;
  }

  /** False after the latest call that settled failed, until one succeeds. */
  get reachable(): boolean {
    return this.#reachable;
  }

  claim(messageId: string, leaseMs: number): Promise<ClaimResult> {
    return this.#track(() => this.#store.claim(messageId, leaseMs));
  }

  complete(messageId: string, ttlMs: number): Promise<void> {
    return this.#track(() => this.#store.complete(messageId, ttlMs));
  }

  release(messageId: string): Promise<void> {
    return this.#track(() => this.#store.release(messageId));
  }

  close(): Promise<void> {
    this.stopProbing();
    return this.#store.close();
  }

  /** Stops probing for good: the worker is stopping (a caller's store is closed by its caller). */
  stopProbing(): void {
    this.#stopped = true;
    clearInterval(this.#probe);
    this.#probe = undefined;
  }

  async #track<T>(call: () => Promise<T>): Promise<T> {
    this.#started += 1;
    const order = this.#started;
    try {
      const value = await call();
      this.#settle(order, true);
      return value;
    } catch (error) {
      this.#settle(order, false);
      throw error;
    }
  }

  #settle(order: number, reached: boolean): void {
    if (order < this.#settled) return;
    this.#settled = order;
    this.#reachable = reached;
    if (reached) {
      clearInterval(this.#probe);
      this.#probe = undefined;
    } else if (this.#probe === undefined && !this.#stopped) {
      this.#probe = setInterval(() => {
        this.release(PROBE_ID).catch(() => {});
      }, this.#probeEveryMs);
      this.#probe.unref();
    }
  }
}
