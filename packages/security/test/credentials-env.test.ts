import { ConfigError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { credentialSource, EnvCredentialSource } from '../src/index.ts';

describe('credentials in an environment variable', () => {
  it('reads the variable from the environment it is given', async () => {
    const env = { BROKER_CREDENTIALS: '{"username": "warren", "password": "s3cret"}' };
    const source = credentialSource({ env: 'BROKER_CREDENTIALS' }, env);
    expect(source.description).toBe('environment variable BROKER_CREDENTIALS');
    expect(await source.read()).toEqual({ username: 'warren', password: 's3cret' });
  });

  it('refuses an unset variable, naming it', async () => {
    const source = new EnvCredentialSource('BROKER_CREDENTIALS', {});
    await expect(source.read()).rejects.toThrow(
      new ConfigError(
        'environment variable BROKER_CREDENTIALS: expected it to be set, found it unset',
      ),
    );
  });

  it('refuses malformed content without quoting it', async () => {
    const source = new EnvCredentialSource('BROKER_CREDENTIALS', { BROKER_CREDENTIALS: 's3cret' });
    const error = await source.read().catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(
      /^environment variable BROKER_CREDENTIALS: expected JSON/,
    );
    expect((error as Error).message).not.toContain('s3cret');
  });

  it('reads the environment once: watching it reports nothing, even when the object changes', async () => {
    const env: Record<string, string> = {
      BROKER_CREDENTIALS: '{"username": "warren", "password": "one"}',
    };
    const source = new EnvCredentialSource('BROKER_CREDENTIALS', env);
    await source.read();
    const told: string[] = [];
    const stop = source.watch({
      onChange: (credentials) => told.push(credentials.password),
      onError: (error) => told.push(error.message),
    });
    env.BROKER_CREDENTIALS = '{"username": "warren", "password": "two"}';
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop();
    expect(told).toEqual([]);
  });
});
