/**
 * The abort signal of one handler call. Most handlers (a no-op, a quick transform) never read
 * their signal, so its `AbortController` is made only when one does; a call is still cut short
 * at its deadline or at shutdown through {@link JobSignal.race}, which needs no listener.
 */
export class JobSignal {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #onAbort: ((reason: unknown) => void) | undefined;

  /** The `AbortSignal` handed to the handler, made on first use (aborted already if it is). */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#onAbort?.(reason);
  }

  /**
   * Settles with `work`, or rejects with the abort reason if this aborts first: a handler that
   * ignores its signal cannot hold a job (and a concurrency slot) past its deadline or the drain.
   */
  race<T>(work: Promise<T>): Promise<T> {
    if (this.#aborted) {
      work.catch(() => {});
      return Promise.reject(this.#reason);
    }
    return new Promise<T>((resolve, reject) => {
      this.#onAbort = reject;
      work.then(
        (value) => {
          this.#onAbort = undefined;
          resolve(value);
        },
        (error: unknown) => {
          this.#onAbort = undefined;
          reject(error);
        },
      );
    });
  }
}

/**
 * The job signals of a consumer's running handler calls, all aborted when its shutdown signal
 * aborts: one listener on that long-lived signal for every call, rather than one per call.
 */
export class RunningSignals {
  readonly #running = new Set<JobSignal>();
  readonly #shutdown: AbortSignal;

  constructor(shutdown: AbortSignal) {
    this.#shutdown = shutdown;
    shutdown.addEventListener(
      'abort',
      () => {
        for (const signal of this.#running) signal.abort(shutdown.reason);
        this.#running.clear();
      },
      { once: true },
    );
  }

  /** A signal for a call starting now: aborted at once if the consumer has shut down. */
  open(): JobSignal {
    const signal = new JobSignal();
    if (this.#shutdown.aborted) signal.abort(this.#shutdown.reason);
    else this.#running.add(signal);
    return signal;
  }

  close(signal: JobSignal): void {
    this.#running.delete(signal);
  }
}
