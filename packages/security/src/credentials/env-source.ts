import { ConfigError } from '@warren/core';
import { type Credentials, parseCredentials } from './credentials.ts';
import type { CredentialSource, CredentialsListener } from './source.ts';

/**
 * Credentials in an environment variable, as JSON (see {@link parseCredentials}). A process's
 * environment does not change under it, so the variable is read once and never watched: new
 * credentials there take a restart.
 */
export class EnvCredentialSource implements CredentialSource {
  readonly description: string;
  readonly #name: string;
  readonly #env: Record<string, string | undefined>;

  constructor(name: string, env: Record<string, string | undefined> = process.env) {
    this.#name = name;
    this.#env = env;
    this.description = `environment variable ${name}`;
  }

  async read(): Promise<Credentials> {
    const text = this.#env[this.#name];
    if (text === undefined) {
      throw new ConfigError(`${this.description}: expected it to be set, found it unset`);
    }
    return parseCredentials(text, this.description);
  }

  /** Reports nothing: the environment is read once. */
  watch(_listener: CredentialsListener): () => void {
    return () => {};
  }
}
