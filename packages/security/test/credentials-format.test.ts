import { ConfigError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { MAX_CREDENTIALS_BYTES } from '../src/credentials/credentials.ts';
import { parseCredentials, sameCredentials } from '../src/index.ts';

const SOURCE = 'file /run/secrets/broker.json';

function refusal(text: string): string {
  try {
    parseCredentials(text, SOURCE);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('the credentials format', () => {
  it('reads a JSON object with a user name and a password, ignoring other fields', () => {
    const text = '{"username": "warren", "password": "s3cret p@ss", "note": "rotated monthly"}\n';
    expect(parseCredentials(text, SOURCE)).toEqual({ username: 'warren', password: 's3cret p@ss' });
  });

  it('names the source and what was expected, and never repeats the content', () => {
    const cases: Array<[string, string]> = [
      ['hunter2', 'found text that is not JSON'],
      ['', 'found nothing'],
      ['["warren", "hunter2"]', 'found an array'],
      ['"hunter2"', 'found a string'],
      ['{"password": "hunter2"}', 'expected "username" to be a non-empty string, found nothing'],
      [
        '{"username": "warren", "password": ""}',
        '"password" to be a non-empty string, found an empty string',
      ],
      [
        '{"username": "warren", "password": 42}',
        '"password" to be a non-empty string, found a number',
      ],
    ];
    for (const [text, expected] of cases) {
      const message = refusal(text);
      expect(message).toContain(SOURCE);
      expect(message).toContain(expected);
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain('42');
    }
  });

  it('refuses content past its size limit without parsing it', () => {
    const text = `{"username": "warren", "password": "${'x'.repeat(MAX_CREDENTIALS_BYTES)}"}`;
    expect(refusal(text)).toContain(`found more than ${MAX_CREDENTIALS_BYTES} bytes`);
  });

  it('tells the same credentials from changed ones', () => {
    const a = { username: 'warren', password: 'one' };
    expect(sameCredentials(a, { ...a })).toBe(true);
    expect(sameCredentials(a, { ...a, password: 'two' })).toBe(false);
    expect(sameCredentials(a, { ...a, username: 'other' })).toBe(false);
  });
});
