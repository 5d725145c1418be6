import { ConfigError, describeIssues } from '@warren/core';
import { z } from 'zod';

/**
 * What signing and encryption key sets share: key ids, base64 secrets, the JSON file (a mounted
 * secret) or environment variable they are read from, and a map of keys by id.
 */

/** A key id as it travels in a header: 1 to 128 letters, digits, `.`, `_`, `:` or `-`. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** What a key id must be, as errors say it. */
export const KEY_ID_RULE = "1 to 128 letters, digits, '.', '_', ':' or '-'";

/** Whether `id` could name a key: checked before an id from a message is looked up or quoted. */
export function isKeyId(id: string): boolean {
  return KEY_ID_PATTERN.test(id);
}

export const keyIdSchema = z.string().regex(KEY_ID_PATTERN, { message: `expected ${KEY_ID_RULE}` });

export const base64Schema = z
  .string()
  .regex(/^[A-Za-z0-9+/_-]+={0,2}$/, { message: 'expected base64' });

/** Bytes from base64 or base64url, whichever the text is written in. */
export function decodeBase64(text: string): Buffer {
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}

/**
 * A key file's content checked against `schema`; `source` names where it came from in errors,
 * and no error quotes a key.
 */
export function parseKeyFile<T>(text: string, source: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not kept as the cause: JSON.parse quotes the start of the text, which may be a raw key.
    throw new ConfigError(`${source}: expected JSON, found text that does not parse`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error, { root: source }));
  return parsed.data;
}

/**
 * Keys by id. During a rotation a ring holds the old key and the new one, so that what either
 * made is accepted while producers move to the new id.
 */
export class KeyRing<K extends { readonly id: string }> {
  readonly #keys = new Map<string, K>();

  constructor(keys: Iterable<K>, what: string) {
    for (const key of keys) {
      if (this.#keys.has(key.id)) throw new ConfigError(`${what} id ${key.id}: given twice`);
      this.#keys.set(key.id, key);
    }
  }

  get(id: string): K | undefined {
    return this.#keys.get(id);
  }

  get ids(): string[] {
    return [...this.#keys.keys()];
  }
}
