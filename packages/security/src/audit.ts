import { appendFileSync } from 'node:fs';
import type { AuditEntry, AuditSink } from '@warren/core';

export type { AuditEntry } from '@warren/core';

/**
 * An append-only JSON-lines audit log: one line per decision, written synchronously with
 * O_APPEND before the job is settled, so a refusal is on disk before its dead letter exists.
 * Several processes may append to one file; each line is one write. Bodies, signatures and
 * secrets are never part of an entry.
 */
export class JsonLinesAuditLog implements AuditSink {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  get path(): string {
    return this.#path;
  }

  record(entry: AuditEntry): void {
    appendFileSync(this.#path, `${JSON.stringify(entry)}\n`, { flag: 'a', mode: 0o600 });
  }
}
