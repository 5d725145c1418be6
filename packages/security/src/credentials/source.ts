import { type ConfigError, describeThrown } from '@warren/core';
import { type Credentials, sameCredentials } from './credentials.ts';

/** Told what a watched source holds. */
export interface CredentialsListener {
  /** The source now holds different credentials. */
  onChange(credentials: Credentials): void;
  /**
   * A check of the source failed (unreadable, malformed, a command that failed). The credentials
   * in use stay as they are; a run of identical failures is reported once.
   */
  onError(error: ConfigError): void;
}

/** Where credentials come from: a mounted secret file, an environment variable or a command. */
export interface CredentialSource {
  /** Names the source in logs and errors (`file /run/secrets/amqp.json`), never its content. */
  readonly description: string;
  /** Reads the source now; rejects with a {@link ConfigError} naming it. */
  read(): Promise<Credentials>;
  /**
   * Watches the source and calls `listener.onChange` only when what it holds really changed:
   * compared with the last credentials {@link read} returned before the watch began (or the
   * first check, if none), then with the last change reported. Returns the function that stops.
   */
  watch(listener: CredentialsListener): () => void;
}

/**
 * The checks of one watch: each runs the source's read, at most one at a time (a check asked for
 * while one runs is run once after it), and reports a change or a new failure.
 */
export class ChangeCheck {
  readonly #read: () => Promise<Credentials>;
  readonly #listener: CredentialsListener;
  #known: Credentials | undefined;
  #lastError: string | undefined;
  #running = false;
  #again = false;
  #stopped = false;

  constructor(
    read: () => Promise<Credentials>,
    listener: CredentialsListener,
    known: Credentials | undefined,
  ) {
    this.#read = read;
    this.#listener = listener;
    this.#known = known;
  }

  /** Checks the source now, or right after the check under way. */
  run(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#check()
      .catch((error: unknown) => {
        // A listener threw: its own fault, never a reason to take the process down.
        process.emitWarning(`credential source listener threw: ${describeThrown(error)}`);
      })
      .finally(() => {
        this.#running = false;
        if (this.#again) {
          this.#again = false;
          this.run();
        }
      });
  }

  stop(): void {
    this.#stopped = true;
  }

  async #check(): Promise<void> {
    let credentials: Credentials;
    try {
      credentials = await this.#read();
    } catch (error) {
      if (this.#stopped) return;
      const failure = error as ConfigError;
      if (failure.message === this.#lastError) return;
      this.#lastError = failure.message;
      this.#listener.onError(failure);
      return;
    }
    if (this.#stopped) return;
    this.#lastError = undefined;
    const known = this.#known;
    this.#known = credentials;
    if (known === undefined || sameCredentials(known, credentials)) return;
    this.#listener.onChange(credentials);
  }
}
