import type { LogSink } from '@warren/core';
import { describeCause } from './cause.ts';
import type { ConnectionEvents } from './connection-events.ts';
import { backoffDelay, type RecoveryPolicy } from './recovery-policy.ts';

/** A rotation attempt that failed, with the user it was for when the credentials were read. */
export class RotationFailure extends Error {
  readonly username: string | undefined;

  constructor(cause: unknown, username: string | undefined) {
    super(describeCause(cause), { cause });
    this.name = 'RotationFailure';
    this.username = username;
  }
}

export interface CredentialRotationOptions {
  /**
   * One attempt: resolves with the user name the transport now uses, or undefined when there was
   * nothing to move (not connected yet: the first connection reads the credentials anyway).
   * Rejects with a {@link RotationFailure} when the new connection could not be made ready, and
   * with anything else when the transport can no longer rotate (closed, or lost for good).
   */
  attempt: () => Promise<string | undefined>;
  retry: RecoveryPolicy;
  events: ConnectionEvents;
  logger: LogSink;
  fields: object;
}

/**
 * Runs a transport's credential rotations one at a time: a request made while one runs is run
 * once after it (however many came). A failed attempt is reported, and tried again after a
 * backoff that grows with each failure in a row, until one succeeds, the next request comes (it
 * runs at once) or the rotation is stopped.
 */
export class CredentialRotation {
  readonly #options: CredentialRotationOptions;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #failures = 0;
  #stopped = false;

  constructor(options: CredentialRotationOptions) {
    this.#options = options;
  }

  /** Rotates now, or once the rotation under way has ended; settles like that attempt. */
  request(): Promise<void> {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    if (this.#running === undefined) {
      this.#running = this.#run().finally(() => {
        this.#running = undefined;
      });
      return this.#running;
    }
    this.#next ??= this.#running
      .catch(() => {})
      .then(() => {
        this.#next = undefined;
        return this.request();
      });
    return this.#next;
  }

  /** No more attempts: the transport is closing. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
  }

  async #run(): Promise<void> {
    const { logger, fields, events } = this.#options;
    let username: string | undefined;
    try {
      username = await this.#options.attempt();
    } catch (error) {
      if (!(error instanceof RotationFailure) || this.#stopped) throw error;
      this.#failed(error);
      throw error;
    }
    this.#failures = 0;
    if (username === undefined) return;
    logger.info({ ...fields, username }, 'broker credentials rotated');
    events.emit({ type: 'rotated', username });
  }

  #failed(failure: RotationFailure): void {
    const { logger, fields, events, retry } = this.#options;
    this.#failures += 1;
    const attempt = this.#failures;
    const retryInMs = backoffDelay(retry, attempt);
    const cause = failure.cause instanceof Error ? failure.cause : failure;
    const detail = { ...fields, username: failure.username, attempt, retryInMs };
    logger.warn(
      { ...detail, error: failure.message },
      'broker credentials rotation failed; the current connection goes on',
    );
    events.emit({ type: 'rotation-failed', username: failure.username, attempt, retryInMs, cause });
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      // Reported above when it fails again; nobody waits for this promise.
      this.request().catch(() => {});
    }, retryInMs);
    // The connection in use keeps the process alive; a pending retry alone should not.
    this.#retry.unref();
  }
}
