import { AmqpTransport, redactUrl } from '@warren/amqp';
import {
  type AuditSink,
  ConfigError,
  type DedupeOptions,
  type DedupeStore,
  type InferenceClient,
  MemoryDedupeStore,
  type Transport,
} from '@warren/core';
import { LocalInference } from '@warren/inference/local-inference';
import type { Logger } from 'pino';
import type { WorkerConfig } from './config.ts';
import { openBrokerCredentials } from './credentials.ts';
import { auditOtherUser, auditRotations } from './credentials-audit.ts';
import { ReachabilityTracked } from './dedupe-reachability.ts';
import { type LoadedHandler, loadHandler } from './plugins.ts';

// What a worker is made of, built from its config: plugins, transport, inference, dedupe. What
// only some configs use (the Redis client, the remote inference client) is imported when one
// does: a worker that does not use them does not hold their code in memory.

/** Where environment variables are read from. */
export type Environment = Record<string, string | undefined>;

export async function loadHandlers(config: WorkerConfig): Promise<LoadedHandler[]> {
  const loaded = await Promise.all(
    config.handlers.map((entry, index) => loadHandler(entry.module, index, entry.options)),
  );
  const seen = new Map<string, number>();
  for (const [index, { handler }] of loaded.entries()) {
    const first = seen.get(handler.name);
    if (first !== undefined) {
      throw new ConfigError(
        `config.handlers[${index}]: handler name ${handler.name} is already used by config.handlers[${first}]`,
      );
    }
    seen.set(handler.name, index);
  }
  return loaded;
}

export async function createDedupe(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
  injected: DedupeStore | undefined,
): Promise<DedupeOptions | undefined> {
  const { store, leaseMs, ttlMs } = config.dedupe;
  // A store outside the process can be out of reach; /readyz says so (see ReachabilityTracked).
  if (injected !== undefined) return { store: new ReachabilityTracked(injected), leaseMs, ttlMs };
  if (store === 'none') return undefined;
  if (store === 'memory') return { store: new MemoryDedupeStore(), leaseMs, ttlMs };
  const { RedisDedupeStore } = await import('@warren/redis');
  const redis = withRedisUrl(config, env, (url) => new RedisDedupeStore({ url }));
  return { store: new ReachabilityTracked(redis), leaseMs, ttlMs };
}

/**
 * Makes a Redis client with the URL in the variable `dedupe.redisUrlEnv` names (the library's
 * default when it is unset); a URL it refuses is a config error that says where it came from.
 */
export function withRedisUrl<T>(
  config: WorkerConfig,
  env: Environment,
  make: (url: string | undefined) => T,
): T {
  const name = config.dedupe.redisUrlEnv;
  try {
    return make(env[name]);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(
      `environment variable ${name} (config.dedupe.redisUrlEnv): ${error.message}`,
      { cause: error },
    );
  }
}

/**
 * The RabbitMQ transport: AMQP_URL, else `broker.url`, logging in with the credentials
 * `broker.credentials` names (read now, then watched; docs/credentials.md) when it names some.
 * Rotations are logged by the transport and written to `auditLog`, if there is one.
 */
export async function createTransport(
  config: WorkerConfig,
  env: Environment,
  logger: Logger,
  auditLog?: AuditSink,
): Promise<Transport> {
  const url = env.AMQP_URL ?? config.broker.url;
  logger.info({ broker: redactUrl(url) }, 'broker selected');
  const credentials = await openBrokerCredentials(config, env, logger, (username, message) => {
    if (auditLog !== undefined) auditOtherUser(auditLog, username, message);
  });
  const { connectionName, heartbeatSeconds, connectTimeoutMs, recovery, publishBuffer } =
    config.broker;
  const transport = new AmqpTransport({
    url,
    logger,
    connectionName: connectionName ?? 'warren-worker',
    heartbeatSeconds,
    connectTimeoutMs,
    recovery,
    publishBuffer,
    ...(credentials === undefined ? {} : { credentials }),
  });
  if (auditLog !== undefined) transport.onConnectionEvent(auditRotations(auditLog, logger));
  return transport;
}

export async function createInference(
  config: WorkerConfig,
  env: Environment,
  logger: Logger,
): Promise<InferenceClient> {
  const { use, local, remote } = config.inference;
  if (use === 'remote') {
    const accessToken =
      remote.accessTokenEnv === undefined ? undefined : env[remote.accessTokenEnv];
    if (remote.accessTokenEnv !== undefined && accessToken === undefined) {
      throw new ConfigError(
        `config.inference.remote.accessTokenEnv: expected environment variable ${remote.accessTokenEnv} to be set, found it unset`,
      );
    }
    const { RemoteInference } = await import('@warren/inference/remote-inference');
    return new RemoteInference({
      logger,
      ...(remote.endpointUrl === undefined ? {} : { endpointUrl: remote.endpointUrl }),
      ...(remote.provider === undefined ? {} : { provider: remote.provider }),
      ...(accessToken === undefined ? {} : { accessToken }),
    });
  }
  return new LocalInference({
    logger,
    dtype: local.dtype,
    onTooLong: local.onTooLong,
    ...(local.modelPath === undefined ? {} : { localModelPath: local.modelPath }),
    ...(local.allowRemoteModels === undefined
      ? {}
      : { allowRemoteModels: local.allowRemoteModels }),
    ...(local.cacheDir === undefined ? {} : { cacheDir: local.cacheDir }),
    ...(local.maxInputTokens === undefined ? {} : { maxInputTokens: local.maxInputTokens }),
    ...(local.thread === undefined ? {} : { thread: local.thread }),
    ...(local.intraOpThreads === undefined ? {} : { intraOpThreads: local.intraOpThreads }),
    ...(local.allowSpinning === undefined ? {} : { allowSpinning: local.allowSpinning }),
  });
}
