import { readFile } from 'node:fs/promises';
import { ConfigError } from '@warren/core';
import { KeySet, MemoryReplayGuard, SignatureVerifier } from '@warren/security';
import type { WorkerConfig } from './config.ts';

/**
 * The verifier the config's `security.signing` asks for, shared by every consumer of the worker
 * (so one replay guard sees all its queues); undefined when signing is not configured. `relays`
 * are the worker accounts whose republished jobs skip the replay checks (core's relay.ts).
 */
export async function createVerifier(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
  relays: readonly string[],
): Promise<SignatureVerifier | undefined> {
  const signing = config.security.signing;
  if (signing === undefined) return undefined;
  const keys = await readKeySet(signing, env);
  return new SignatureVerifier({
    keys,
    required: signing.required,
    algorithms: signing.algorithms,
    windowMs: signing.windowMs,
    replayGuard: new MemoryReplayGuard({ maxEntries: signing.replayMaxEntries }),
    relays,
  });
}

type SigningConfig = NonNullable<WorkerConfig['security']['signing']>;

async function readKeySet(
  signing: SigningConfig,
  env: Record<string, string | undefined>,
): Promise<KeySet> {
  if (signing.keysEnv !== undefined) {
    const text = env[signing.keysEnv];
    if (text === undefined) {
      throw new ConfigError(
        `config.security.signing.keysEnv: expected environment variable ${signing.keysEnv} to be set, found it unset`,
      );
    }
    return KeySet.fromJson(text, `environment variable ${signing.keysEnv}`);
  }
  const path = signing.keysFile!;
  let text: string;
  try {
    text = await readFile(path, 'utf-8');
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError(`config.security.signing.keysFile ${path}: cannot be read (${detail})`, {
      cause,
    });
  }
  return KeySet.fromJson(text, `key file ${path}`);
}
