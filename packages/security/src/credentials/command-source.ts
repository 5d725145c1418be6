import { type ExecFileException, execFile } from 'node:child_process';
import { basename } from 'node:path';
import { ConfigError } from '@warren/core';
import { type Credentials, MAX_CREDENTIALS_BYTES, parseCredentials } from './credentials.ts';
import { ChangeCheck, type CredentialSource, type CredentialsListener } from './source.ts';

export interface CommandCredentialSourceOptions {
  /** How often the command runs again to look for new credentials, in ms. Default 60,000. */
  refreshIntervalMs?: number;
  /** How long one run may take before it is killed, in ms. Default 10,000. */
  timeoutMs?: number;
  /** The command's environment; the process's own by default. */
  env?: Record<string, string | undefined>;
}

export const DEFAULT_REFRESH_INTERVAL_MS = 60_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/** The most of a failed command's stderr that an error quotes. */
const STDERR_EXCERPT = 200;

/**
 * Credentials printed by a command (a secrets manager's client, say) on its standard output, as
 * JSON (see {@link parseCredentials}). The command is an argument vector run without a shell, so
 * nothing in it is expanded or interpreted. Errors name the program alone, since its arguments
 * may hold a token, and quote at most the last line of its stderr, shortened; what it printed on
 * stdout is never quoted. The command runs again every `refreshIntervalMs` while watched.
 */
export class CommandCredentialSource implements CredentialSource {
  readonly description: string;
  readonly #argv: readonly string[];
  readonly #refreshIntervalMs: number;
  readonly #timeoutMs: number;
  readonly #env: Record<string, string | undefined> | undefined;
  #lastRead: Credentials | undefined;

  constructor(argv: readonly string[], options: CommandCredentialSourceOptions = {}) {
    if (argv.length === 0 || argv[0] === '') {
      throw new ConfigError(
        'credentials command: expected a program and its arguments, found none',
      );
    }
    this.#argv = [...argv];
    this.#refreshIntervalMs = options.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#env = options.env;
    this.description = `command ${basename(argv[0]!)}`;
  }

  async read(): Promise<Credentials> {
    const credentials = await this.#run();
    this.#lastRead = credentials;
    return credentials;
  }

  watch(listener: CredentialsListener): () => void {
    const check = new ChangeCheck(() => this.#run(), listener, this.#lastRead);
    const refresh = setInterval(() => check.run(), this.#refreshIntervalMs);
    refresh.unref();
    return () => {
      check.stop();
      clearInterval(refresh);
    };
  }

  #run(): Promise<Credentials> {
    const [program, ...args] = this.#argv as [string, ...string[]];
    return new Promise((resolve, reject) => {
      execFile(
        program,
        args,
        {
          shell: false,
          timeout: this.#timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: MAX_CREDENTIALS_BYTES,
          windowsHide: true,
          encoding: 'utf-8',
          ...(this.#env === undefined ? {} : { env: this.#env }),
        },
        (error, stdout, stderr) => {
          if (error === null) {
            try {
              resolve(parseCredentials(stdout, this.description));
            } catch (failure) {
              reject(failure);
            }
            return;
          }
          // Node's own message repeats the arguments and the whole of stderr: not passed on.
          reject(new ConfigError(`${this.description}: ${this.#failure(error, stderr)}`));
        },
      );
    });
  }

  #failure(error: ExecFileException, stderr: string): string {
    if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
      return `expected at most ${MAX_CREDENTIALS_BYTES} bytes of output, found more`;
    }
    if (error.killed) return `did not finish within ${this.#timeoutMs} ms, and was killed`;
    if (typeof error.code === 'string') return `cannot be run (${error.code})`;
    const ended =
      typeof error.code === 'number'
        ? `exited with code ${error.code}`
        : `was ended by ${error.signal ?? 'a signal'}`;
    const excerpt = lastLine(stderr);
    return excerpt === undefined ? ended : `${ended}: ${excerpt}`;
  }
}

/** The last non-blank line of `text`, shortened to {@link STDERR_EXCERPT} characters. */
function lastLine(text: string): string | undefined {
  const line = text
    .split('\n')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .at(-1);
  if (line === undefined) return undefined;
  return line.length > STDERR_EXCERPT ? `${line.slice(0, STDERR_EXCERPT - 3)}...` : line;
}
