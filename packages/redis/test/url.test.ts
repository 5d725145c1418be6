import { describe, expect, it } from 'vitest';
import { redactRedisUrl } from '../src/index.ts';

describe('redactRedisUrl', () => {
  it('drops the user and password but keeps the host, port and database', () => {
    expect(redactRedisUrl('redis://warren:s3cret@cache.internal:6379/2')).toBe(
      'redis://cache.internal:6379/2',
    );
  });

  it('drops a password-only credential, a password containing an @ and the query', () => {
    expect(redactRedisUrl('rediss://:s3cret@[::1]:6380?password=x')).toBe('rediss://[::1]:6380');
    expect(redactRedisUrl('redis://user:p@ss@host:6379')).toBe('redis://host:6379');
  });

  it('leaves a URL without credentials as it was', () => {
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });

  it('answers a fixed placeholder for text it cannot read, so nothing of it leaks', () => {
    expect(redactRedisUrl('user:s3cret at host')).toBe('redis://<unreadable url>');
    expect(redactRedisUrl('http://user:s3cret@host')).toBe('redis://<unreadable url>');
  });
});
