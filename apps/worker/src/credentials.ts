import { type CredentialsProvider, urlHasPassword } from '@warren/amqp';
import { ConfigError, describeThrown, type LogSink } from '@warren/core';
import { type CredentialSource, type Credentials, credentialSource } from '@warren/security';
import type { WorkerConfig } from './config.ts';

/**
 * The broker credentials `broker.credentials` names, as a provider for `AmqpTransport`: read
 * once now, so that a missing or malformed secret stops the worker at start (exit 2), then read
 * again before every connection, and watched, so that a change rotates the transport. Undefined
 * when the config names no source. See docs/credentials.md.
 *
 * The user name may not change while the worker runs: the worker stamps it as the `user_id` of
 * what it republishes, and trusts it as a relay, both decided at start. A source that names
 * another user is refused (logged, audited, never dialled); a restart takes the new user.
 */
export async function openBrokerCredentials(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
  logger: LogSink,
  onOtherUser: OtherUserListener = () => {},
): Promise<CredentialsProvider | undefined> {
  const spec = config.broker.credentials;
  if (spec === undefined) return undefined;
  if (env.AMQP_URL !== undefined && urlHasPassword(env.AMQP_URL)) {
    throw new ConfigError(
      'config.broker.credentials: expected one source of broker credentials, found a password ' +
        'in AMQP_URL too; remove it from AMQP_URL',
    );
  }
  const { file, env: variable, command, pollIntervalMs, refreshIntervalMs, timeoutMs } = spec;
  const source = credentialSource(
    file !== undefined
      ? { file, ...(pollIntervalMs === undefined ? {} : { pollIntervalMs }) }
      : variable !== undefined
        ? { env: variable }
        : {
            command: command!,
            ...(refreshIntervalMs === undefined ? {} : { refreshIntervalMs }),
            ...(timeoutMs === undefined ? {} : { timeoutMs }),
          },
    env,
  );

  let last: Credentials;
  try {
    last = await source.read();
  } catch (error) {
    throw new ConfigError(`config.broker.credentials: ${describeThrown(error)}`, { cause: error });
  }
  logger.info({ source: source.description, username: last.username }, 'broker credentials read');
  return new WorkerCredentials(source, last, logger, onOtherUser);
}

/** Told when the source names a user other than the one the worker started as. */
export type OtherUserListener = (username: string, message: string) => void;

/** What a source says, checked against the user this worker started as. */
class WorkerCredentials implements CredentialsProvider {
  readonly username: string;
  readonly #source: CredentialSource;
  readonly #logger: LogSink;
  readonly #onOtherUser: OtherUserListener;
  #last: Credentials;

  constructor(
    source: CredentialSource,
    first: Credentials,
    logger: LogSink,
    onOtherUser: OtherUserListener,
  ) {
    this.username = first.username;
    this.#source = source;
    this.#last = first;
    this.#logger = logger;
    this.#onOtherUser = onOtherUser;
  }

  /**
   * The source's credentials now. When the source cannot be read at this moment (a secret
   * being replaced), the last ones read are used, and the failure is logged.
   */
  async read(): Promise<Credentials> {
    let credentials: Credentials;
    try {
      credentials = await this.#source.read();
    } catch (error) {
      this.#logger.warn(
        { source: this.#source.description, error: describeThrown(error) },
        'broker credentials could not be read; dialling with the last ones read',
      );
      return this.#last;
    }
    if (credentials.username !== this.username) throw this.#otherUser(credentials.username);
    this.#last = credentials;
    return credentials;
  }

  watch(changed: () => void): () => void {
    return this.#source.watch({
      onChange: (credentials) => {
        const fields = { source: this.#source.description, username: credentials.username };
        if (credentials.username !== this.username) {
          const { message } = this.#otherUser(credentials.username);
          this.#logger.error(
            { ...fields, error: message },
            'broker credentials name another user; not rotating',
          );
          this.#onOtherUser(credentials.username, message);
          return;
        }
        this.#logger.info(fields, 'broker credentials changed; rotating the connection');
        changed();
      },
      onError: (error) => {
        this.#logger.warn(
          { source: this.#source.description, error: error.message },
          'broker credentials could not be read; keeping the ones in use',
        );
      },
    });
  }

  #otherUser(username: string): ConfigError {
    return new ConfigError(
      `config.broker.credentials: ${this.#source.description} now names user ${username}, ` +
        `and this worker logs in as ${this.username}, which it stamps on what it publishes: ` +
        'restart it to change the user',
    );
  }
}
