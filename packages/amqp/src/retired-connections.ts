import type { LogSink } from '@warren/core';
import type { ChannelModel } from 'amqplib';
import type { ChannelConsumer } from './channel-consumer.ts';
import { closeQuietly } from './closing.ts';
import type { ConfirmPublisher } from './confirm-publisher.ts';

/** What may still use a connection a rotation replaced. */
export interface ConnectionUsers {
  publisher: ConfirmPublisher;
  /** The transport's live consumers, now. */
  consumers(): Iterable<ChannelConsumer>;
  /** Consumers being started, possibly on the old connection. */
  starting(): ReadonlySet<Promise<unknown>>;
}

/**
 * The connections a credentials rotation replaced. Each is closed once nothing uses it any more:
 * the broker has confirmed every publish sent on it, and every consumer channel on it has had
 * its deliveries settled and has closed. Closing it sooner would requeue those deliveries, and
 * their jobs would run twice.
 */
export class RetiredConnections {
  readonly #users: ConnectionUsers;
  readonly #logger: LogSink;
  readonly #fields: object;
  readonly #open = new Set<ChannelModel>();
  #closed = false;

  constructor(users: ConnectionUsers, logger: LogSink, fields: object) {
    this.#users = users;
    this.#logger = logger;
    this.#fields = fields;
  }

  /** Closes `connection` once drained; `username` is for the log line that says so. */
  retire(connection: ChannelModel, username: string): void {
    this.#open.add(connection);
    void this.#closeWhenDrained(connection, username).finally(() => {
      this.#open.delete(connection);
    });
  }

  /** Closes every retired connection now (the transport is closing). */
  async closeAll(): Promise<void> {
    this.#closed = true;
    for (const connection of [...this.#open]) await closeQuietly(connection);
  }

  async #closeWhenDrained(connection: ChannelModel, username: string): Promise<void> {
    const { publisher } = this.#users;
    let consumers = [...this.#users.consumers()];
    for (;;) {
      await Promise.allSettled([...this.#users.starting()]);
      await Promise.all([
        publisher.whenOff(connection),
        ...consumers.map((consumer) => consumer.whenOff(connection)),
      ]);
      // A consumer that started on it as it was replaced is moved too: wait for that one.
      consumers = [...this.#users.consumers()].filter((consumer) => consumer.isOn(connection));
      if (consumers.length === 0 && this.#users.starting().size === 0) break;
    }
    if (this.#closed) return;
    await closeQuietly(connection);
    this.#logger.info({ ...this.#fields, username }, 'previous broker connection closed');
  }
}
