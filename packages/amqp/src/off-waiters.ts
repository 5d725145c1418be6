import type { ChannelModel } from 'amqplib';

/**
 * Who waits for a publisher or a consumer to stop using a connection (a credentials rotation
 * closes the old one once nothing is on it). `isOn` says whether the owner still has a channel
 * open on a connection; the owner calls {@link check} whenever that may have changed.
 */
export class OffWaiters {
  readonly #isOn: (connection: ChannelModel) => boolean;
  #waiting: Array<{ connection: ChannelModel; resolve: () => void }> = [];

  constructor(isOn: (connection: ChannelModel) => boolean) {
    this.#isOn = isOn;
  }

  /** Resolves once the owner has no channel open on `connection`. */
  wait(connection: ChannelModel): Promise<void> {
    if (!this.#isOn(connection)) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push({ connection, resolve }));
  }

  /** Lets go of those whose connection the owner is off now. */
  check(): void {
    if (this.#waiting.length === 0) return;
    this.#waiting = this.#waiting.filter(({ connection, resolve }) => {
      if (this.#isOn(connection)) return true;
      resolve();
      return false;
    });
  }
}
