/**
 * `setImmediate` and `setTimeout` as they were when this module loaded: the harness waits on the
 * event loop, not on time, so fake timers a test installs later (`vi.useFakeTimers()`) must not
 * stop it. Time, for the broker and the consumer, is the harness's {@link FakeClock}.
 */
const realSetImmediate = globalThis.setImmediate;
const realSetTimeout = globalThis.setTimeout;

/** Turns in a row with nothing changed after which the broker and the consumer count as quiet. */
const QUIET_TURNS = 5;

/** A guard against a job that cycles for ever (requeued at every delivery, say). */
const MAX_TURNS = 100_000;

/** Resolves on a later turn of the event loop, after pending I/O callbacks and microtasks. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

/** Resolves after `ms` milliseconds of real time. */
export function realDelay(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/**
 * Lets the event loop turn until `snapshot` (a summary of everything observable: transitions,
 * queue depths, timers, results) stays the same for {@link QUIET_TURNS} turns in a row. The
 * embedded broker moves a message at most one hop per turn, so a quiet stretch that long means
 * nothing is on its way; what remains waits on the clock, or on a handler that has not returned.
 */
export async function settle(snapshot: () => string): Promise<void> {
  let last = snapshot();
  let quiet = 0;
  for (let turn = 0; turn < MAX_TURNS; turn += 1) {
    await nextTurn();
    const now = snapshot();
    quiet = now === last ? quiet + 1 : 0;
    if (quiet >= QUIET_TURNS) return;
    last = now;
  }
  throw new Error(
    `the broker and the consumer were still busy after ${MAX_TURNS} turns of the event loop: ` +
      'is a job going round and round (requeued at every delivery)?',
  );
}
