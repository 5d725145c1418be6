import { appendFileSync } from 'node:fs';
import { type AuditSink, ConfigError, describeThrown, type LogSink } from '@warren/core';
import { JsonLinesAuditLog } from '@warren/security';
import type { WorkerConfig } from './config.ts';

/**
 * The audit log `security.auditLog` names, once the file is known to take appends (else the
 * worker does not start); undefined when none is configured. A write that fails later is logged
 * and never changes a decision: a refused job is still dead-lettered as refused.
 */
export function openAuditLog(config: WorkerConfig, logger: LogSink): AuditSink | undefined {
  const path = config.security.auditLog;
  if (path === undefined) return undefined;
  try {
    appendFileSync(path, '', { flag: 'a', mode: 0o600 });
  } catch (cause) {
    const detail = describeThrown(cause);
    throw new ConfigError(`config.security.auditLog ${path}: cannot be appended to (${detail})`, {
      cause,
    });
  }
  const log = new JsonLinesAuditLog(path);
  return {
    record(entry) {
      try {
        log.record(entry);
      } catch (error) {
        logger.error({ err: error, event: entry.event, path }, 'audit log write failed');
      }
    },
  };
}
