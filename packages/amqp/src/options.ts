import { ConfigError, type LogSink, silentLogSink } from '@warren/core';
import {
  type CredentialsProvider,
  DEFAULT_ROTATION_RETRY,
  type RotationRetryOptions,
} from './credentials.ts';
import {
  checkTimeout,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type PublishBufferOptions,
  publishBufferLimits,
  type RecoveryOptions,
  type RecoveryPolicy,
  recoveryPolicy,
} from './recovery-policy.ts';
import { amqpUrlProblem, dialUrl, redactUrl, urlHasPassword, urlUsername } from './url.ts';

export interface AmqpTransportOptions {
  /**
   * `amqp://user:password@host:port/vhost`; logs and errors show it without credentials. With
   * {@link AmqpTransportOptions.credentials} it names no password: the provider's user name and
   * password replace the URL's.
   */
  url: string;
  /**
   * Where the user name and password come from, read again before every connection (the first,
   * each reconnect and each rotation), so that they can change while the transport runs. See
   * {@link AmqpTransport.rotateCredentials}.
   */
  credentials?: CredentialsProvider;
  /** How a rotation that failed is tried again. */
  rotationRetry?: RotationRetryOptions;
  /** A pino logger, or anything with its `debug`/`info`/`warn`/`error`; silent by default. */
  logger?: LogSink;
  /** Shown by the broker (management UI, `rabbitmqctl list_connections`) for this connection. */
  connectionName?: string;
  /**
   * Heartbeat interval to ask the broker for; the broker's own suggestion when absent. A peer
   * silent for about two intervals counts as lost, and recovery starts.
   */
  heartbeatSeconds?: number;
  /** How long one connection attempt (TCP and the AMQP handshake) may take, in ms. Default 10,000. */
  connectTimeoutMs?: number;
  /** Reconnecting after the connection is lost: backoff and when to give up. */
  recovery?: RecoveryOptions;
  /** Limits on publishes held until the broker confirms them, as during a reconnect. */
  publishBuffer?: PublishBufferOptions;
}

/** The options checked, with their defaults filled in. */
export interface ResolvedOptions {
  /** The URL amqplib dials, with the heartbeat in its query. */
  dialUrl: string;
  /** The URL without credentials, for logs and errors. */
  broker: string;
  /** The user name the URL gives (amqplib's default `guest` when it names none). */
  urlUsername: string;
  credentials: CredentialsProvider | undefined;
  rotationRetry: RecoveryPolicy;
  connectionName: string | undefined;
  connectTimeoutMs: number;
  policy: RecoveryPolicy;
  publishBuffer: Required<PublishBufferOptions>;
  logger: LogSink;
  /** Fields every log line carries. */
  fields: { broker: string; connectionName?: string };
}

/** Checks every option; throws a {@link ConfigError} naming the first one that is wrong. */
export function resolveOptions(options: AmqpTransportOptions): ResolvedOptions {
  const problem = amqpUrlProblem(options.url);
  if (problem !== undefined) {
    throw new ConfigError(`url: expected an amqp:// or amqps:// URL with a host, found ${problem}`);
  }
  const heartbeat = options.heartbeatSeconds;
  if (heartbeat !== undefined && (!Number.isInteger(heartbeat) || heartbeat < 0)) {
    throw new ConfigError(
      `heartbeatSeconds: expected an integer of at least 0, found ${heartbeat}`,
    );
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  checkTimeout('connectTimeoutMs', connectTimeoutMs);
  if (options.credentials !== undefined && urlHasPassword(options.url)) {
    throw new ConfigError(
      'url: expected no password when `credentials` is given (they would replace it), found one',
    );
  }

  const broker = redactUrl(options.url);
  const { connectionName } = options;
  return {
    dialUrl: dialUrl(options.url, heartbeat),
    broker,
    urlUsername: urlUsername(options.url),
    credentials: options.credentials,
    rotationRetry: recoveryPolicy(
      { ...DEFAULT_ROTATION_RETRY, ...options.rotationRetry },
      'rotationRetry',
    ),
    connectionName,
    connectTimeoutMs,
    policy: recoveryPolicy(options.recovery),
    publishBuffer: publishBufferLimits(options.publishBuffer),
    logger: options.logger ?? silentLogSink,
    fields: connectionName === undefined ? { broker } : { broker, connectionName },
  };
}
