import { BrokerUnreachableError } from '@warren/core';
import { credentials as amqpCredentials, type ChannelModel, connect, type Options } from 'amqplib';
import { describeCause } from './cause.ts';
import type { Credentials, CredentialsProvider } from './credentials.ts';
import { coalesceWrites } from './write-coalescing.ts';

export interface DialerOptions {
  /** The URL amqplib dials (credentials, if any, are replaced by the provider's). */
  url: string;
  /** The URL without credentials, for errors. */
  broker: string;
  /** Who the URL logs in as. */
  urlUsername: string;
  connectionName: string | undefined;
  credentials: CredentialsProvider | undefined;
  /** Told when a dial fell back to the last working credentials (user names only). */
  onFallBack?: (refused: string, used: string, cause: unknown) => void;
}

/** Which read of the credentials a connection was dialled with, and as whom. */
interface DialledWith {
  /** 0 when the URL's credentials were used; else counts the provider's reads, from 1. */
  readonly read: number;
  readonly username: string;
}

/**
 * Opens connections to the broker, reading the credentials afresh from the provider (when there
 * is one) for each, and remembers which read and which user each connection was dialled with.
 */
export class Dialer {
  readonly #options: DialerOptions;
  readonly #dialled = new WeakMap<ChannelModel, DialledWith>();
  #reads = 0;
  #lastUsername: string | undefined;
  /** The credentials of the last connection that opened, and which read they came from. */
  #lastGood: { credentials: Credentials; read: number } | undefined;

  constructor(options: DialerOptions) {
    this.#options = options;
  }

  /** How many times the provider's credentials were read so far. */
  get reads(): number {
    return this.#reads;
  }

  /** The user the last dial tried to log in as (undefined when its credentials were unreadable). */
  get lastUsername(): string | undefined {
    return this.#lastUsername;
  }

  /** Who the next dial most likely logs in as, as far as is known before reading. */
  get nextUsername(): string | undefined {
    const { credentials, urlUsername } = this.#options;
    if (credentials === undefined) return urlUsername;
    return this.#lastUsername ?? credentials.username;
  }

  /**
   * A new connection with the credentials read now; rejects with {@link BrokerUnreachableError},
   * naming the user it tried. With `fallBack`, when those fail, the last ones that worked are
   * tried before giving up.
   */
  async dial(timeoutMs: number, options: { fallBack: boolean }): Promise<ChannelModel> {
    const { connectionName } = this.#options;
    const clientProperties =
      connectionName === undefined ? {} : { connection_name: connectionName };
    const socketOptions: Options.Connect & Record<string, unknown> = {
      clientProperties,
      timeout: timeoutMs,
    };
    this.#lastUsername = undefined;
    if (this.#options.credentials === undefined) {
      const dialled = { read: 0, username: this.#options.urlUsername };
      this.#lastUsername = dialled.username;
      return this.#connect(socketOptions, dialled);
    }
    const fresh = await this.#read(this.#options.credentials);
    this.#reads += 1;
    const read = this.#reads;
    this.#lastUsername = fresh.username;
    try {
      const connection = await this.#connect(
        { ...socketOptions, credentials: amqpCredentials.plain(fresh.username, fresh.password) },
        { read, username: fresh.username },
      );
      this.#lastGood = { credentials: fresh, read };
      return connection;
    } catch (error) {
      // A secret rewritten with a wrong password must not keep a reconnect from the broker: the
      // credentials that last worked are tried too. The connection counts as dialled with their
      // read, so that the new ones are still tried as a rotation.
      const good = this.#lastGood;
      if (!options.fallBack || good === undefined || sameCredentials(good.credentials, fresh)) {
        throw error;
      }
      const { username, password } = good.credentials;
      const connection = await this.#connect(
        { ...socketOptions, credentials: amqpCredentials.plain(username, password) },
        { read: good.read, username },
      ).catch(() => Promise.reject(error));
      this.#lastUsername = username;
      this.#options.onFallBack?.(fresh.username, username, error);
      return connection;
    }
  }

  async #connect(socketOptions: Options.Connect, dialled: DialledWith): Promise<ChannelModel> {
    let connection: ChannelModel;
    try {
      connection = await connect(this.#options.url, socketOptions);
    } catch (cause) {
      throw this.unreachable(cause, dialled.username);
    }
    coalesceWrites(connection);
    this.#dialled.set(connection, dialled);
    return connection;
  }

  /** The provider read `connection` was dialled with (0: the URL's credentials). */
  readOf(connection: ChannelModel): number {
    return this.#dialled.get(connection)?.read ?? 0;
  }

  usernameOf(connection: ChannelModel): string {
    return this.#dialled.get(connection)?.username ?? this.#options.urlUsername;
  }

  /** The error for a connection that could not be made, naming the user when a provider gave it. */
  unreachable(cause: unknown, username?: string): BrokerUnreachableError {
    const as =
      username === undefined || this.#options.credentials === undefined ? '' : ` as ${username}`;
    return new BrokerUnreachableError(
      `cannot connect to ${this.#options.broker}${as}: ${describeCause(cause)}`,
      { cause },
    );
  }

  async #read(provider: CredentialsProvider): Promise<Credentials> {
    let credentials: Credentials;
    try {
      credentials = await provider.read();
    } catch (cause) {
      throw this.unreachable(
        new Error(`the credentials could not be read: ${describeCause(cause)}`, { cause }),
      );
    }
    const { username, password } = credentials ?? {};
    if (typeof username !== 'string' || username === '' || typeof password !== 'string') {
      throw this.unreachable(
        new Error('the credentials provider gave no user name and password (two strings)'),
      );
    }
    return { username, password };
  }
}

function sameCredentials(a: Credentials, b: Credentials): boolean {
  return a.username === b.username && a.password === b.password;
}
