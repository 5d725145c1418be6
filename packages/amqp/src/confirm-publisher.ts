import {
  type LogSink,
  PublishBufferFullError,
  PublishError,
  type PublishTarget,
  UnroutableError,
} from '@warren/core';
import {
  type ChannelModel,
  type ConfirmChannel,
  IllegalOperationError,
  type Options,
} from 'amqplib';
import { describeCause } from './cause.ts';
import { closeQuietly } from './closing.ts';
import { OffWaiters } from './off-waiters.ts';

/** A confirm channel and what became of it. */
interface PublishChannel {
  readonly channel: ConfirmChannel;
  /** The connection it is a channel of. */
  readonly connection: ChannelModel;
  open: boolean;
  /** False while amqplib's buffer for the channel is full, until it drains. */
  writable: boolean;
  /** The broker's reason for closing it, such as a publish to an exchange that does not exist. */
  closedBy: Error | undefined;
  /** Message ids of mandatory publishes the broker returned; their confirm follows the return. */
  returned: Set<string>;
  /** Sent on this channel and not yet confirmed, in the order they were sent. */
  inFlight: Set<Outgoing>;
  /** Retired, drained and being closed. */
  closing: boolean;
}

/**
 * One publish the publisher holds until the broker confirms it or it fails; settled through
 * `ConfirmPublisher.#settle`, which also takes it off the buffer's count.
 */
interface Outgoing {
  readonly target: PublishTarget;
  readonly body: Buffer;
  readonly options: Options.Publish;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** How much the publisher may hold that the broker has not confirmed. */
export interface PublishBufferLimits {
  maxMessages: number;
  maxBytes: number;
}

export interface ConfirmPublisherOptions {
  logger: LogSink;
  /** Fields every log line carries (the broker, the connection name). */
  fields: object;
  limits: PublishBufferLimits;
}

/**
 * Publishes on one confirm channel and settles each publish when the broker confirms it
 * (amqplib matches each confirm to its publish by delivery tag). Publishes wait in a bounded
 * buffer while there is no connection, and those sent but not confirmed when the connection
 * went are sent again on the next one: at least once, so the broker may get a message twice.
 * When the broker closes the channel alone (a publish to a missing exchange does), the
 * publishes in flight on it fail with the broker's reason and the rest go on a fresh channel.
 *
 * Attached to another connection while the old one still works (a credentials rotation), it
 * publishes on a channel of the new one from then on, and keeps the old channel open until the
 * broker has confirmed every publish sent on it: each is confirmed where it was sent, neither
 * lost nor sent twice. Should the old connection go first, those unconfirmed are sent again on
 * the new channel, as after a reconnect.
 */
export class ConfirmPublisher {
  readonly #options: ConfirmPublisherOptions;
  /** Accepted and not yet written to a channel, oldest first. */
  readonly #waiting: Outgoing[] = [];
  #connection: ChannelModel | undefined;
  #active: PublishChannel | undefined;
  /** Channels of earlier connections, open until what was sent on them is confirmed. */
  readonly #retiring = new Set<PublishChannel>();
  /** Who waits for this publisher to stop using a connection (see {@link whenOff}). */
  readonly #off = new OffWaiters((connection) => this.#isOn(connection));
  #opening: Promise<PublishChannel> | undefined;
  #openingOn: ChannelModel | undefined;
  #held = 0;
  #heldBytes = 0;
  #closed = false;

  constructor(options: ConfirmPublisherOptions) {
    this.#options = options;
  }

  /**
   * Publishes from now on go through `connection`: opens its channel and sends what waits. A
   * channel still open on another connection is retired: closed once its publishes are confirmed.
   */
  async attach(connection: ChannelModel): Promise<void> {
    this.#connection = connection;
    await this.#channel(connection);
    this.#pump();
  }

  /**
   * `connection` is gone: publishes wait for the next {@link attach}. Those in flight on it come
   * back to the buffer when their channel reports its close.
   */
  detach(connection: ChannelModel): void {
    if (this.#connection === connection) this.#connection = undefined;
    for (const state of this.#channels()) {
      if (state.connection === connection) state.open = false;
    }
    this.#off.check();
  }

  /** Resolves once no channel of this publisher is open on `connection`. */
  whenOff(connection: ChannelModel): Promise<void> {
    return this.#off.wait(connection);
  }

  /**
   * Resolves when the broker confirms the message; rejects with {@link PublishError}, or at once
   * with {@link PublishBufferFullError} when the buffer is at its limit.
   */
  publish(target: PublishTarget, body: Buffer, options: Options.Publish): Promise<void> {
    if (this.#closed) return Promise.reject(publishError(target, 'the publisher is closed'));
    const { maxMessages, maxBytes } = this.#options.limits;
    if (this.#held + 1 > maxMessages || this.#heldBytes + body.length > maxBytes) {
      return Promise.reject(
        new PublishBufferFullError(
          `publish to ${describeTarget(target)} refused: the transport already holds ` +
            `${this.#held} unconfirmed messages (${this.#heldBytes} bytes), and may hold ` +
            `${maxMessages} (${maxBytes} bytes): the broker connection is down, or the broker ` +
            'is slow to confirm',
        ),
      );
    }

    return new Promise<void>((resolve, reject) => {
      this.#held += 1;
      this.#heldBytes += body.length;
      this.#waiting.push({ target, body, options, resolve, reject });
      this.#pump();
    });
  }

  /** Settles a publish it held: confirmed when `error` is absent, failed with it otherwise. */
  #settle(outgoing: Outgoing, error?: Error): void {
    this.#held -= 1;
    this.#heldBytes -= outgoing.body.length;
    if (error === undefined) outgoing.resolve();
    else outgoing.reject(error);
  }

  /** Rejects every publish it holds with `error`: the transport gave up on the broker. */
  fail(error: Error): void {
    this.#closed = true;
    const held: Outgoing[] = [];
    for (const state of this.#channels()) {
      held.push(...state.inFlight);
      state.inFlight.clear();
    }
    held.push(...this.#waiting.splice(0));
    for (const outgoing of held) this.#settle(outgoing, error);
    for (const state of this.#retiring) void closeQuietly(state.channel);
  }

  /** Closes the channel. Publishes not yet confirmed reject with {@link PublishError}. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const outgoing of this.#waiting.splice(0)) {
      this.#settle(
        outgoing,
        publishError(outgoing.target, 'the transport closed before it was sent'),
      );
    }
    await this.#opening?.catch(() => {});
    const open = [...this.#channels()].filter((state) => state.open);
    this.#active = undefined;
    await Promise.all(open.map((state) => closeQuietly(state.channel)));
  }

  /** Writes waiting publishes while the channel takes them; opens one if there is none. */
  #pump(): void {
    while (this.#waiting.length > 0 && !this.#closed) {
      const active = this.#active;
      if (active === undefined || !active.open) {
        this.#reopen();
        return;
      }
      if (!active.writable) return;
      this.#write(active, this.#waiting.shift()!);
    }
  }

  #reopen(): void {
    const connection = this.#connection;
    if (connection === undefined || this.#opening !== undefined) return;
    this.#channel(connection).then(
      () => this.#pump(),
      (cause) => {
        // Without a connection the next attach retries; with one, the channel itself fails.
        if (this.#connection !== connection) return;
        for (const outgoing of this.#waiting.splice(0)) {
          const reason = `no publish channel: ${describeCause(cause)}`;
          this.#settle(outgoing, publishError(outgoing.target, reason, cause));
        }
      },
    );
  }

  #write(state: PublishChannel, outgoing: Outgoing): void {
    const { target, body, options } = outgoing;
    state.inFlight.add(outgoing);
    try {
      const writable = state.channel.publish(
        target.exchange,
        target.routingKey,
        body,
        options,
        (error) => this.#onConfirm(state, outgoing, error),
      );
      if (!writable) this.#waitForDrain(state);
    } catch (error) {
      state.inFlight.delete(outgoing);
      if (error instanceof IllegalOperationError) {
        // The channel is closing: nothing was sent. Its close sends this on the next one.
        this.#waiting.unshift(outgoing);
        state.writable = false;
        return;
      }
      this.#settle(outgoing, publishError(target, describeCause(error), error));
    }
  }

  #onConfirm(state: PublishChannel, outgoing: Outgoing, error: unknown): void {
    if (error === null || error === undefined) {
      state.inFlight.delete(outgoing);
      this.#closeIfRetired(state);
      const id = outgoing.options.messageId;
      if (outgoing.options.mandatory && id !== undefined && state.returned.delete(id)) {
        const reason = `no queue is bound for ${describeTarget(outgoing.target)}`;
        this.#settle(outgoing, new UnroutableError(reason));
        return;
      }
      this.#settle(outgoing);
      return;
    }
    // amqplib reports a closing channel to each unconfirmed publish before the channel's own
    // 'close' listeners run; the close handler below decides those. What it leaves is a nack.
    queueMicrotask(() => {
      if (!state.inFlight.delete(outgoing)) return;
      this.#settle(outgoing, publishError(outgoing.target, describeCause(error), error));
      this.#closeIfRetired(state);
    });
  }

  async #channel(connection: ChannelModel): Promise<PublishChannel> {
    if (this.#closed) throw new Error('the publisher is closed');
    if (this.#active?.open && this.#active.connection === connection) return this.#active;
    if (this.#opening !== undefined && this.#openingOn !== connection) {
      // Still opening on a connection since lost: that fails; open on this one after it.
      await this.#opening.catch(() => {});
      return this.#channel(connection);
    }
    if (this.#opening === undefined) {
      this.#openingOn = connection;
      this.#opening = this.#openChannel(connection).finally(() => {
        this.#opening = undefined;
        this.#openingOn = undefined;
      });
    }
    return this.#opening;
  }

  async #openChannel(connection: ChannelModel): Promise<PublishChannel> {
    const { logger, fields } = this.#options;
    const channel = await connection.createConfirmChannel();
    const state: PublishChannel = {
      channel,
      connection,
      open: true,
      writable: true,
      closedBy: undefined,
      returned: new Set(),
      inFlight: new Set(),
      closing: false,
    };
    channel.on('return', (message: { properties: { messageId?: string } }) => {
      if (message.properties.messageId) state.returned.add(message.properties.messageId);
    });
    channel.on('error', (error: Error) => {
      state.closedBy = error;
      logger.warn(
        { ...fields, error: describeCause(error) },
        'publish channel closed by the broker',
      );
    });
    channel.on('close', () => this.#onChannelClose(state));
    if (this.#closed || this.#connection !== connection) {
      await closeQuietly(channel);
      throw new Error(this.#closed ? 'the publisher is closed' : 'the connection was lost');
    }
    const previous = this.#active;
    this.#active = state;
    if (previous?.open) this.#retire(previous);
    return state;
  }

  /** `state` takes no new publishes; it closes once the broker confirmed what it has. */
  #retire(state: PublishChannel): void {
    this.#retiring.add(state);
    const { logger, fields } = this.#options;
    logger.debug({ ...fields, unconfirmed: state.inFlight.size }, 'publish channel retired');
    this.#closeIfRetired(state);
  }

  #closeIfRetired(state: PublishChannel): void {
    // The active channel, which most confirms come on, is never retired.
    if (state === this.#active || state.closing) return;
    if (!this.#retiring.has(state) || state.inFlight.size > 0 || !state.open) return;
    // Off the list of open channels only once closed: until then the connection is in use.
    state.closing = true;
    void closeQuietly(state.channel);
  }

  #onChannelClose(state: PublishChannel): void {
    state.open = false;
    this.#retiring.delete(state);
    if (this.#active === state) this.#active = undefined;
    const unconfirmed = [...state.inFlight];
    state.inFlight.clear();
    if (state.closedBy !== undefined || this.#closed) {
      const cause = state.closedBy ?? new Error('the transport closed before the broker confirmed');
      for (const outgoing of unconfirmed) {
        this.#settle(outgoing, publishError(outgoing.target, describeCause(cause), cause));
      }
    } else if (unconfirmed.length > 0) {
      // Closed without a reason of its own: the connection went. The broker may have taken
      // some of these already, so sending them again can make duplicates (at least once).
      this.#waiting.unshift(...unconfirmed);
      this.#options.logger.debug(
        { ...this.#options.fields, messages: unconfirmed.length },
        'unconfirmed publishes kept to send again',
      );
    }
    // The connection reports its loss just after its channels close; only then pump.
    queueMicrotask(() => this.#pump());
    this.#off.check();
  }

  *#channels(): Iterable<PublishChannel> {
    if (this.#active !== undefined) yield this.#active;
    yield* this.#retiring;
  }

  #isOn(connection: ChannelModel): boolean {
    for (const state of this.#channels()) {
      if (state.open && state.connection === connection) return true;
    }
    return false;
  }

  #waitForDrain(state: PublishChannel): void {
    if (!state.writable) return;
    state.writable = false;
    this.#options.logger.debug(this.#options.fields, 'publish channel full, waiting for drain');
    state.channel.once('drain', () => {
      state.writable = true;
      this.#pump();
    });
  }
}

function publishError(target: PublishTarget, reason: string, cause?: unknown): PublishError {
  return new PublishError(`publish to ${describeTarget(target)} failed: ${reason}`, { cause });
}

function describeTarget(target: PublishTarget): string {
  return `exchange "${target.exchange}" with routing key "${target.routingKey}"`;
}
