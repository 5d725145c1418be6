/**
 * Remembers the message ids of accepted jobs for as long as they could still pass the freshness
 * window, so that the same signed job published again is refused as `replayed`.
 */
export interface ReplayGuard {
  /**
   * Records `messageId` until `expiresAt` (epoch ms); true when it was recorded already (and has
   * not expired), that is, when this delivery is a replay.
   */
  seen(messageId: string, expiresAt: number, now: number): boolean | Promise<boolean>;
}

export const DEFAULT_REPLAY_MAX_ENTRIES = 100_000;

/**
 * A {@link ReplayGuard} in this process's memory, bounded: past `maxEntries`, the ids that
 * expire soonest are forgotten first. One worker only: a fleet needs a store the workers share
 * (a Redis `SET NX PX`, like `@warren/redis`'s dedupe store), since a replay may reach any worker.
 */
export class MemoryReplayGuard implements ReplayGuard {
  /** Expiry by id; kept in insertion order, which is near enough expiry order to prune from. */
  readonly #expiries = new Map<string, number>();
  readonly #maxEntries: number;

  constructor(options: { maxEntries?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? DEFAULT_REPLAY_MAX_ENTRIES;
  }

  seen(messageId: string, expiresAt: number, now: number): boolean {
    this.#prune(now);
    const known = this.#expiries.get(messageId);
    if (known !== undefined && known > now) return true;
    this.#expiries.delete(messageId);
    this.#expiries.set(messageId, expiresAt);
    while (this.#expiries.size > this.#maxEntries) {
      const oldest = this.#expiries.keys().next().value as string;
      this.#expiries.delete(oldest);
    }
    return false;
  }

  get size(): number {
    return this.#expiries.size;
  }

  #prune(now: number): void {
    for (const [id, expiresAt] of this.#expiries) {
      if (expiresAt > now) return;
      this.#expiries.delete(id);
    }
  }
}
