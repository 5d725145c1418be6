/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * Settles like `work`, unless `signal` aborts or `deadline` (epoch ms) passes first: then it
 * rejects, and whatever `work` still yields goes to `discard`, so that a connection opened too
 * late is closed rather than leaked.
 */
export function within<T>(
  work: Promise<T>,
  signal: AbortSignal,
  deadline: number,
  discard: (late: T) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const stop = (error: Error): void => {
      if (settled) return;
      finish();
      reject(error);
    };
    const onAbort = (): void => stop(new Error('recovery stopped: the transport is closing'));
    const timer = setTimeout(
      () => stop(new Error('not done before the time to give up')),
      Math.max(0, deadline - Date.now()),
    );
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort);

    work.then(
      (value) => {
        if (settled) {
          discard(value);
          return;
        }
        finish();
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        finish();
        reject(error);
      },
    );
  });
}
