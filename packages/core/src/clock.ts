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

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const due = Date.now() + Math.max(0, delayMs);
    let handle: NodeJS.Timeout;
    const arm = (): void => {
      const left = due - Date.now();
      handle = setTimeout(
        left > MAX_TIMER_MS ? arm : callback,
        Math.min(Math.max(0, left), MAX_TIMER_MS),
      );
      handle.unref?.();
    };
    arm();
    return { cancel: () => clearTimeout(handle) };
  },
};
