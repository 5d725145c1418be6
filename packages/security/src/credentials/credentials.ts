import { ConfigError } from '@warren/core';

/** A user name and password for a service such as the broker. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** The most a source may hold: a credentials document is a few hundred bytes. */
export const MAX_CREDENTIALS_BYTES = 64 * 1024;

/** What a source's content must look like, for error messages. */
const EXPECTED = 'expected JSON {"username": "...", "password": "..."}';

/**
 * Reads credentials from their one format: a JSON object with a non-empty `username` and a
 * non-empty `password` string (other fields are ignored, so a secret can carry notes).
 * `source` names where the text came from. No error repeats the text or any part of it: JSON's
 * own parse errors quote the input, so they are not passed on.
 */
export function parseCredentials(text: string, source: string): Credentials {
  const problem = (found: string) => new ConfigError(`${source}: ${EXPECTED}, found ${found}`);
  if (Buffer.byteLength(text) > MAX_CREDENTIALS_BYTES) {
    throw problem(`more than ${MAX_CREDENTIALS_BYTES} bytes`);
  }
  if (text.trim() === '') throw problem('nothing');

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw problem('text that is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw problem(kindOf(value));
  }

  const record = value as Record<string, unknown>;
  for (const field of ['username', 'password'] as const) {
    const found = record[field];
    if (typeof found !== 'string' || found === '') {
      const what = found === '' ? 'an empty string' : kindOf(found);
      throw new ConfigError(
        `${source}: expected "${field}" to be a non-empty string, found ${what}`,
      );
    }
  }
  return { username: record.username as string, password: record.password as string };
}

/** Whether two sets of credentials are the same. */
export function sameCredentials(a: Credentials, b: Credentials): boolean {
  return a.username === b.username && a.password === b.password;
}

function kindOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
