import { ConfigError, type LogSink, silentLogSink } from '@warren/core';
import {
  checkTimeout,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type PublishBufferOptions,
  publishBufferLimits,
  type RecoveryOptions,
  type RecoveryPolicy,
  recoveryPolicy,
} from './recovery-policy.ts';
import { amqpUrlProblem, dialUrl, redactUrl } from './url.ts';

export interface AmqpTransportOptions {
  /** `amqp://user:password@host:port/vhost`; logs and errors show it without credentials. */
  url: string;
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

  const broker = redactUrl(options.url);
  const { connectionName } = options;
  return {
    dialUrl: dialUrl(options.url, heartbeat),
    broker,
    connectionName,
    connectTimeoutMs,
    policy: recoveryPolicy(options.recovery),
    publishBuffer: publishBufferLimits(options.publishBuffer),
    logger: options.logger ?? silentLogSink,
    fields: connectionName === undefined ? { broker } : { broker, connectionName },
  };
}
