import { appendFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ConfigError, type LogSink } from '@warren/core';
import {
  auditDecisions,
  JsonLinesAuditLog,
  KeySet,
  MemoryReplayGuard,
  SignatureVerifier,
} from '@warren/security';
import type { WorkerConfig } from './config.ts';

/**
 * The verifier the config's `security.signing` asks for, shared by every consumer of the worker
 * (so one replay guard sees all its queues); undefined when signing is not configured.
 */
export async function createVerifier(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
  logger: LogSink,
): Promise<SignatureVerifier | undefined> {
  const signing = config.security.signing;
  if (signing === undefined) return undefined;
  const keys = await readKeySet(signing, env);
  const audit = signing.auditLog === undefined ? undefined : openAuditLog(signing.auditLog, logger);
  return new SignatureVerifier({
    keys,
    required: signing.required,
    algorithms: signing.algorithms,
    windowMs: signing.windowMs,
    replayGuard: new MemoryReplayGuard({ maxEntries: signing.replayMaxEntries }),
    ...(audit === undefined ? {} : { onDecision: audit }),
  });
}

/**
 * The audit listener, once the file is known to take appends (else the worker does not start).
 * A write that fails later is logged; it never changes a verdict, so a refused job is still
 * dead-lettered as refused.
 */
function openAuditLog(path: string, logger: LogSink): ReturnType<typeof auditDecisions> {
  try {
    appendFileSync(path, '', { flag: 'a', mode: 0o600 });
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError(
      `config.security.signing.auditLog ${path}: cannot be appended to (${detail})`,
      { cause },
    );
  }
  const record = auditDecisions(new JsonLinesAuditLog(path));
  return (delivery, verdict) => {
    try {
      record(delivery, verdict);
    } catch (error) {
      logger.error(
        { err: error, messageId: delivery.properties.messageId, path },
        'audit log write failed',
      );
    }
  };
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
