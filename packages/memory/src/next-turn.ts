/**
 * `setImmediate` as it was when this module loaded. The broker hands out deliveries and cancels
 * on a later turn of the event loop, as a network transport would, and never from inside the
 * call that caused them. Time (expiry) goes through the broker's clock; this is not time, so
 * fake timers installed later by a test do not stop messages from flowing.
 */
const realSetImmediate = globalThis.setImmediate;

/** Runs `callback` on a later turn of the event loop. */
export function nextTurn(callback: () => void): void {
  realSetImmediate(callback);
}

/** Reports an error thrown by a listener as uncaught, without stopping the caller's loop. */
export function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}
