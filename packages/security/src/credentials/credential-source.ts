import { CommandCredentialSource } from './command-source.ts';
import { EnvCredentialSource } from './env-source.ts';
import { FileCredentialSource } from './file-source.ts';
import type { CredentialSource } from './source.ts';

/** Where credentials come from, as a config names it. */
export type CredentialSourceSpec =
  | { file: string; pollIntervalMs?: number }
  | { env: string }
  | { command: readonly string[]; refreshIntervalMs?: number; timeoutMs?: number };

/**
 * The source a spec names. `env` is where an `env` source's variable is read (`process.env` by
 * default); a command runs in the process's own environment.
 */
export function credentialSource(
  spec: CredentialSourceSpec,
  env: Record<string, string | undefined> = process.env,
): CredentialSource {
  if ('file' in spec) {
    const { pollIntervalMs } = spec;
    return new FileCredentialSource(
      spec.file,
      pollIntervalMs === undefined ? {} : { pollIntervalMs },
    );
  }
  if ('env' in spec) return new EnvCredentialSource(spec.env, env);
  const { refreshIntervalMs, timeoutMs } = spec;
  return new CommandCredentialSource(spec.command, {
    ...(refreshIntervalMs === undefined ? {} : { refreshIntervalMs }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}
