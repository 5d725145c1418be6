import type { QueueEntry } from './queue-entry.ts';

/**
 * The messages of one queue that wait for a consumer, in the order they leave: highest priority
 * first, then by place in the queue. A priority queue keeps one lane per priority, as RabbitMQ's
 * classic priority queues keep one queue per priority, and each lane has its own head.
 */
export class ReadyMessages {
  /** Index = priority; a queue without priorities has one lane. */
  readonly #lanes: QueueEntry[][];
  #size = 0;

  constructor(maxPriority: number | undefined) {
    this.#lanes = Array.from({ length: (maxPriority ?? 0) + 1 }, () => []);
  }

  get size(): number {
    return this.#size;
  }

  /** Puts an entry at its place by {@link QueueEntry.seq}: the tail for a new one. */
  insert(entry: QueueEntry): void {
    const lane = this.#lanes[entry.priority]!;
    this.#size += 1;
    const last = lane.at(-1);
    if (last === undefined || last.seq < entry.seq) {
      lane.push(entry);
      return;
    }
    let low = 0;
    let high = lane.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (lane[middle]!.seq < entry.seq) low = middle + 1;
      else high = middle;
    }
    lane.splice(low, 0, entry);
  }

  /** Removes and returns the entry that leaves next. */
  shift(): QueueEntry | undefined {
    for (let priority = this.#lanes.length - 1; priority >= 0; priority -= 1) {
      const lane = this.#lanes[priority]!;
      if (lane.length === 0) continue;
      this.#size -= 1;
      return lane.shift();
    }
    return undefined;
  }

  /** Removes the expired entries at the head of each lane; those behind a live one stay. */
  takeExpired(now: number): QueueEntry[] {
    const expired: QueueEntry[] = [];
    for (const lane of this.#lanes) {
      while (lane.length > 0 && isExpired(lane[0]!, now)) expired.push(lane.shift()!);
    }
    this.#size -= expired.length;
    return expired;
  }

  /** When the earliest head expires, if any head can. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const lane of this.#lanes) {
      const at = lane[0]?.expiresAt;
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /** Removes every entry; returns how many there were. */
  clear(): number {
    const count = this.#size;
    for (const lane of this.#lanes) lane.length = 0;
    this.#size = 0;
    return count;
  }
}

function isExpired(entry: QueueEntry, now: number): boolean {
  return entry.expiresAt !== undefined && entry.expiresAt <= now;
}
