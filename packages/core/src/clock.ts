/** A cancellable timer from a {@link Clock}. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as Warren's actors and the embedded broker see it. Tests inject a fake clock and advance
 * it; everything else uses {@link systemClock}.
 */
export interface Clock {
  /** UTC epoch milliseconds. */
  now(): number;
  setTimer(callback: () => void, delayMs: number): Timer;
}

/** Node's timers hold at most 2^31 - 1 ms (about 24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A timer of {@link systemClock}. A class, not closures: a consumer may arm one per job, and
 * closures made per call cost more (tsx names each one as it is made).
 */
class SystemTimer implements Timer {
  readonly #callback: () => void;
  readonly #due: number;
  #handle: NodeJS.Timeout;

  constructor(callback: () => void, delayMs: number) {
    this.#callback = callback;
    this.#due = Date.now() + Math.max(0, delayMs);
    this.#handle = this.#arm();
  }

  cancel(): void {
    clearTimeout(this.#handle);
  }

  #arm(): NodeJS.Timeout {
    const left = this.#due - Date.now();
    const handle =
      left > MAX_TIMER_MS
        ? setTimeout(() => {
            this.#handle = this.#arm();
          }, MAX_TIMER_MS)
        : setTimeout(this.#callback, Math.max(0, left));
    handle.unref?.();
    return handle;
  }
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (callback, delayMs) => new SystemTimer(callback, delayMs),
};
