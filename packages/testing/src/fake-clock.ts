import type { Clock, Timer } from '@warren/core';

interface PendingTimer {
  readonly due: number;
  /** Timers due at the same moment fire in the order they were set. */
  readonly order: number;
  readonly callback: () => void;
}

/**
 * A {@link Clock} that moves only when a test says so. Timers fire inside {@link advance}, in
 * order of due time; a timer set by a firing callback fires in the same call if it falls due.
 */
export class FakeClock implements Clock {
  #now: number;
  #order = 0;
  readonly #pending = new Set<PendingTimer>();

  /** Starts at `startMs` epoch milliseconds (default 2025-01-01T00:00:00Z). */
  constructor(startMs = Date.UTC(2025, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMs: number): Timer {
    const timer: PendingTimer = {
      due: this.#now + Math.max(0, delayMs),
      order: this.#order++,
      callback,
    };
    this.#pending.add(timer);
    return { cancel: () => this.#pending.delete(timer) };
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance: expected 0 or more milliseconds, found ${ms}`);
    const until = this.#now + ms;
    for (let timer = this.#nextDue(until); timer !== undefined; timer = this.#nextDue(until)) {
      this.#pending.delete(timer);
      this.#now = timer.due;
      timer.callback();
    }
    this.#now = until;
  }

  /** Timers set and neither fired nor cancelled. */
  get pendingTimers(): number {
    return this.#pending.size;
  }

  /** How far the earliest pending timer is from now (0 if it is due), or undefined for none. */
  msUntilNextTimer(): number | undefined {
    const next = this.#nextDue(Number.POSITIVE_INFINITY);
    return next === undefined ? undefined : Math.max(0, next.due - this.#now);
  }

  #nextDue(until: number): PendingTimer | undefined {
    let next: PendingTimer | undefined;
    for (const timer of this.#pending) {
      if (timer.due > until) continue;
      if (
        next === undefined ||
        timer.due < next.due ||
        (timer.due === next.due && timer.order < next.order)
      ) {
        next = timer;
      }
    }
    return next;
  }
}
