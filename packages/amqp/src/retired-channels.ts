import type { LogSink } from '@warren/core';
import type { ChannelModel } from 'amqplib';
import { describeCause } from './cause.ts';
import { closeQuietly } from './closing.ts';
import type { ConsumerChannel } from './consumer-channel.ts';

/** What is known of one retired channel. */
interface Retiring {
  readonly connection: ChannelModel;
  /** The broker confirmed the cancel: nothing more arrives on it. */
  cancelled: boolean;
  closing: boolean;
}

/**
 * The channels a consumer moved off when it moved to another connection (a credentials
 * rotation). Each stays open until the deliveries it handed out are settled, because a delivery
 * can only be settled on its own channel, and closes then; until the broker confirms the
 * cancel of its consumer, what still arrives on it is taken like any delivery.
 */
export class RetiredChannels {
  readonly #entries = new Map<ConsumerChannel, Retiring>();
  readonly #logger: LogSink;
  readonly #fields: object;
  /** Told each time a retired channel is let go of, so that waiters can look again. */
  readonly #onGone: () => void;

  constructor(logger: LogSink, fields: object, onGone: () => void) {
    this.#logger = logger;
    this.#fields = fields;
    this.#onGone = onGone;
  }

  add(line: ConsumerChannel, connection: ChannelModel): void {
    this.#entries.set(line, { connection, cancelled: false, closing: false });
  }

  has(line: ConsumerChannel): boolean {
    return this.#entries.has(line);
  }

  /** Forgets `line` without closing it (it is the consumer's again, or it closed). */
  delete(line: ConsumerChannel): boolean {
    const deleted = this.#entries.delete(line);
    if (deleted) this.#onGone();
    return deleted;
  }

  /** Whether a retired channel on `connection` is still open. */
  isOn(connection: ChannelModel): boolean {
    for (const retiring of this.#entries.values()) {
      if (retiring.connection === connection) return true;
    }
    return false;
  }

  /** Whether every retired channel has had all its deliveries settled. */
  idle(): boolean {
    for (const line of this.#entries.keys()) if (line.unsettled > 0) return false;
    return true;
  }

  /** Stops the consumer on `line`; the channel closes once it is drained. */
  async cancel(line: ConsumerChannel): Promise<void> {
    const retiring = this.#entries.get(line);
    if (retiring === undefined) return;
    try {
      if (line.open) await line.channel.cancel(line.consumerTag);
    } catch (error) {
      // The channel closed first: nothing more arrives on it either way.
      this.#logger.debug({ ...this.#fields, error: describeCause(error) }, 'cancel skipped');
    }
    retiring.cancelled = true;
    this.closeWhenIdle(line);
  }

  /** Closes `line` if it is retired, cancelled and has nothing left unsettled. */
  closeWhenIdle(line: ConsumerChannel): void {
    const retiring = this.#entries.get(line);
    if (retiring === undefined || !retiring.cancelled || line.unsettled > 0) return;
    void this.close(line);
  }

  /** Closes a retired channel, after sending the acks still waiting for the end of the turn. */
  async close(line: ConsumerChannel): Promise<void> {
    const retiring = this.#entries.get(line);
    if (retiring === undefined || retiring.closing) return;
    retiring.closing = true;
    if (line.open) {
      line.flush();
      await closeQuietly(line.channel);
    }
    line.open = false;
    this.delete(line);
    this.#logger.debug(this.#fields, 'retired consumer channel closed');
  }

  closeAll(): Promise<void> {
    return Promise.all([...this.#entries.keys()].map((line) => this.close(line))).then(() => {});
  }

  /** `connection` is gone, and its channels with it: the broker requeued what they held. */
  lose(connection: ChannelModel): void {
    for (const [line, retiring] of this.#entries) {
      if (retiring.connection !== connection) continue;
      line.open = false;
      this.delete(line);
    }
  }
}
