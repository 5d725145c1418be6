import { type FSWatcher, watch } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '@warren/core';
import { type Credentials, MAX_CREDENTIALS_BYTES, parseCredentials } from './credentials.ts';
import { ChangeCheck, type CredentialSource, type CredentialsListener } from './source.ts';

export interface FileCredentialSourceOptions {
  /** How often the file is read in case no change event came, in ms. Default 10,000. */
  pollIntervalMs?: number;
}

export const DEFAULT_POLL_INTERVAL_MS = 10_000;

/** Events in a burst (a rename, a symlink swap) lead to one read after the last of them. */
const SETTLE_MS = 25;

/**
 * Credentials in a file, typically a mounted secret, as JSON (see {@link parseCredentials}).
 *
 * Watching covers the ways a secret changes: rewritten in place, replaced by an atomic rename,
 * or, as Kubernetes does, by swapping the symbolic link its path goes through. A watch on the
 * file itself would follow the old inode and miss the last two, so the directory is watched,
 * and any event there leads to a read whose content is compared with the last. The file is also
 * read every `pollIntervalMs`, for file systems that send no events (network mounts, some
 * container runtimes).
 */
export class FileCredentialSource implements CredentialSource {
  readonly description: string;
  readonly #path: string;
  readonly #pollIntervalMs: number;
  #lastRead: Credentials | undefined;

  constructor(path: string, options: FileCredentialSourceOptions = {}) {
    this.#path = path;
    this.#pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.description = `file ${path}`;
  }

  async read(): Promise<Credentials> {
    const credentials = parseCredentials(await this.#readText(), this.description);
    this.#lastRead = credentials;
    return credentials;
  }

  watch(listener: CredentialsListener): () => void {
    const check = new ChangeCheck(() => this.#check(), listener, this.#lastRead);
    let settle: NodeJS.Timeout | undefined;
    const soon = (): void => {
      clearTimeout(settle);
      settle = setTimeout(() => check.run(), SETTLE_MS);
      settle.unref();
    };

    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(dirname(this.#path), { persistent: false }, soon);
      // The directory went away or cannot be watched any more: polling goes on alone.
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined;
    }
    const poll = setInterval(() => check.run(), this.#pollIntervalMs);
    poll.unref();

    return () => {
      check.stop();
      clearTimeout(settle);
      clearInterval(poll);
      watcher?.close();
    };
  }

  /** What a watch reads: the same as {@link read}, without touching what read last returned. */
  async #check(): Promise<Credentials> {
    return parseCredentials(await this.#readText(), this.description);
  }

  /** The file's text, read up to one byte past the limit so that a larger file is refused. */
  async #readText(): Promise<string> {
    try {
      const handle = await open(this.#path, 'r');
      try {
        const buffer = Buffer.alloc(MAX_CREDENTIALS_BYTES + 1);
        let length = 0;
        while (length < buffer.length) {
          const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
          if (bytesRead === 0) break;
          length += bytesRead;
        }
        return buffer.subarray(0, length).toString('utf-8');
      } finally {
        await handle.close();
      }
    } catch (cause) {
      const code = (cause as { code?: unknown }).code;
      const reason = typeof code === 'string' ? code : String(cause);
      throw new ConfigError(`${this.description}: cannot be read (${reason})`, { cause });
    }
  }
}
