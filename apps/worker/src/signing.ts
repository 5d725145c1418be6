import { readFile } from 'node:fs/promises';
import { ConfigError, describeThrown } from '@warren/core';
import {
  AesGcmDecryptor,
  EncryptionKeySet,
  KeySet,
  MemoryReplayGuard,
  type ReplayGuard,
  SignatureVerifier,
} from '@warren/security';
import type { WorkerConfig } from './config.ts';
import { withRedisUrl } from './resources.ts';

/** A replay guard, and how to let go of what it holds (a Redis connection) when the worker stops. */
export type WorkerReplayGuard = ReplayGuard & { close?(): Promise<void> };

/**
 * The replay guard `security.signing.replayStore` names: in this worker's memory, or in the Redis
 * at `dedupe.redisUrlEnv`, shared by the fleet. Undefined when signing is not configured. A Redis
 * guard connects on its first use; the worker closes it when it stops.
 */
export async function createReplayGuard(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
): Promise<WorkerReplayGuard | undefined> {
  const signing = config.security.signing;
  if (signing === undefined) return undefined;
  if (signing.replayStore === 'memory') {
    return new MemoryReplayGuard({ maxEntries: signing.replayMaxEntries });
  }
  const { RedisReplayGuard } = await import('@warren/redis');
  return withRedisUrl(config, env, (url) => new RedisReplayGuard({ url }));
}

/**
 * The verifier the config's `security.signing` asks for, shared by every consumer of the worker
 * (so one replay guard sees all its queues); undefined when signing is not configured. `relays`
 * are the worker accounts whose republished jobs skip the replay checks (core's relay.ts).
 */
export async function createVerifier(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
  relays: readonly string[],
  replayGuard: ReplayGuard | undefined,
): Promise<SignatureVerifier | undefined> {
  const signing = config.security.signing;
  if (signing === undefined) return undefined;
  const { text, source } = await readKeyText(signing, 'config.security.signing', env);
  return new SignatureVerifier({
    keys: KeySet.fromJson(text, source),
    required: signing.required,
    algorithms: signing.algorithms,
    windowMs: signing.windowMs,
    ...(replayGuard === undefined ? {} : { replayGuard }),
    relays,
  });
}

/**
 * The decryptor the config's `security.encryption` asks for, shared by every consumer of the
 * worker; undefined when encryption is not configured (an encrypted job is then refused).
 */
export async function createDecryptor(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
): Promise<AesGcmDecryptor | undefined> {
  const encryption = config.security.encryption;
  if (encryption === undefined) return undefined;
  const { text, source } = await readKeyText(encryption, 'config.security.encryption', env);
  return new AesGcmDecryptor({
    keys: EncryptionKeySet.fromJson(text, source),
    required: encryption.required,
  });
}

/** Where a config section says its key set is: a file (a mounted secret) or a variable. */
interface KeySource {
  keysFile?: string | undefined;
  keysEnv?: string | undefined;
}

/**
 * The JSON text of a key set, and a name for where it came from that errors can quote (never the
 * keys themselves). `field` names the config section in errors.
 */
async function readKeyText(
  section: KeySource,
  field: string,
  env: Record<string, string | undefined>,
): Promise<{ text: string; source: string }> {
  if (section.keysEnv !== undefined) {
    const text = env[section.keysEnv];
    if (text === undefined) {
      throw new ConfigError(
        `${field}.keysEnv: expected environment variable ${section.keysEnv} to be set, found it unset`,
      );
    }
    return { text, source: `environment variable ${section.keysEnv}` };
  }
  const path = section.keysFile!;
  try {
    return { text: await readFile(path, 'utf-8'), source: `key file ${path}` };
  } catch (cause) {
    const detail = describeThrown(cause);
    throw new ConfigError(`${field}.keysFile ${path}: cannot be read (${detail})`, { cause });
  }
}
