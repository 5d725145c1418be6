import { type LogSink, PublishError, type PublishTarget, UnroutableError } from '@warren/core';
import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { describeCause } from './cause.ts';

/** A confirm channel and what became of it. */
interface PublishChannel {
  readonly channel: ConfirmChannel;
  open: boolean;
  /** The broker's reason for closing it, such as a publish to an exchange that does not exist. */
  closedBy: Error | undefined;
  /** Message ids of mandatory publishes the broker returned; their confirm follows the return. */
  returned: Set<string>;
}

export interface ConfirmPublisherOptions {
  connection: ChannelModel;
  logger: LogSink;
  /** Fields every log line carries (the broker, the connection name). */
  fields: object;
  /** Why the connection went away, if it has: the reason a channel closed without one. */
  connectionCause: () => Error | undefined;
}

/**
 * Publishes on one confirm channel and settles each publish when the broker confirms it. When
 * the broker closes the channel (a publish to a missing exchange does), the publishes in flight
 * fail with the broker's reason and the next publish opens a fresh channel.
 */
export class ConfirmPublisher {
  readonly #options: ConfirmPublisherOptions;
  #active: PublishChannel | undefined;
  #opening: Promise<PublishChannel> | undefined;
  /** Set while the channel's buffer is full; publishes wait for it to drain. */
  #drained: Promise<void> | undefined;
  #closed = false;

  constructor(options: ConfirmPublisherOptions) {
    this.#options = options;
  }

  /** Opens the channel now rather than at the first publish. */
  async open(): Promise<void> {
    await this.#channel();
  }

  /** Resolves when the broker confirms the message; rejects with {@link PublishError}. */
  async publish(target: PublishTarget, body: Buffer, options: Options.Publish): Promise<void> {
    for (;;) {
      let state: PublishChannel;
      try {
        state = await this.#channel();
      } catch (cause) {
        throw publishError(target, `no publish channel: ${describeCause(cause)}`, cause);
      }
      // No await between this check and the write, so no other publish can fill the buffer.
      if (this.#drained === undefined) return this.#send(state, target, body, options);
      await this.#drained;
    }
  }

  /** Closes the channel. Publishes not yet confirmed reject with {@link PublishError}. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#opening?.catch(() => {});
    const active = this.#active;
    this.#active = undefined;
    if (active?.open) await active.channel.close().catch(() => {});
  }

  #send(
    state: PublishChannel,
    target: PublishTarget,
    body: Buffer,
    options: Options.Publish,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (error: unknown): void => {
        const cause = state.closedBy ?? this.#options.connectionCause() ?? error;
        reject(publishError(target, describeCause(cause), cause));
      };
      let writable: boolean;
      try {
        writable = state.channel.publish(
          target.exchange,
          target.routingKey,
          body,
          options,
          (error) => {
            if (error !== null && error !== undefined) return fail(error);
            const id = options.messageId;
            if (options.mandatory && id !== undefined && state.returned.delete(id)) {
              return reject(new UnroutableError(`no queue is bound for ${describeTarget(target)}`));
            }
            resolve();
          },
        );
      } catch (error) {
        fail(error);
        return;
      }
      if (!writable) this.#waitForDrain(state);
    });
  }

  async #channel(): Promise<PublishChannel> {
    if (this.#closed) throw new Error('the publisher is closed');
    if (this.#active?.open) return this.#active;
    this.#opening ??= this.#openChannel().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #openChannel(): Promise<PublishChannel> {
    const { connection, logger, fields } = this.#options;
    const channel = await connection.createConfirmChannel();
    const state: PublishChannel = { channel, open: true, closedBy: undefined, returned: new Set() };
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
    channel.on('close', () => {
      state.open = false;
      if (this.#active === state) this.#active = undefined;
    });
    if (this.#closed) {
      await channel.close().catch(() => {});
      throw new Error('the publisher is closed');
    }
    this.#active = state;
    return state;
  }

  #waitForDrain(state: PublishChannel): void {
    if (this.#drained !== undefined) return;
    this.#options.logger.debug(this.#options.fields, 'publish channel full, waiting for drain');
    this.#drained = new Promise((resolve) => {
      const done = (): void => {
        state.channel.off('drain', done);
        state.channel.off('close', done);
        this.#drained = undefined;
        resolve();
      };
      state.channel.on('drain', done);
      state.channel.on('close', done);
    });
  }
}

function publishError(target: PublishTarget, reason: string, cause: unknown): PublishError {
  return new PublishError(`publish to ${describeTarget(target)} failed: ${reason}`, { cause });
}

function describeTarget(target: PublishTarget): string {
  return `exchange "${target.exchange}" with routing key "${target.routingKey}"`;
}
