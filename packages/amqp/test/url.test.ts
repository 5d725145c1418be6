import { ConfigError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { AmqpTransport, redactUrl } from '../src/index.ts';

describe('redactUrl', () => {
  it('drops the user and password but keeps the host, port and vhost', () => {
    expect(redactUrl('amqp://warren:s3cret@rabbit.internal:5672/jobs')).toBe(
      'amqp://rabbit.internal:5672/jobs',
    );
  });

  it('keeps an encoded vhost and an amqps scheme, and drops the query', () => {
    expect(redactUrl('amqps://u:p@[::1]:5671/%2f?heartbeat=10&password=x')).toBe(
      'amqps://[::1]:5671/%2f',
    );
  });

  it('leaves a URL without credentials as it was', () => {
    expect(redactUrl('amqp://127.0.0.1')).toBe('amqp://127.0.0.1');
  });

  it('drops a password that contains an @', () => {
    expect(redactUrl('amqp://user:p@ss@host:5672/')).toBe('amqp://host:5672/');
  });

  it('answers a fixed placeholder for text it cannot read, so nothing of it leaks', () => {
    expect(redactUrl('user:s3cret at host')).toBe('amqp://<unreadable url>');
  });
});

describe('AmqpTransport', () => {
  it('refuses a URL that is not AMQP with a ConfigError that does not repeat it', () => {
    expect(() => new AmqpTransport({ url: 'http://user:s3cret@127.0.0.1' })).toThrow(ConfigError);
    expect(() => new AmqpTransport({ url: 'not a url with s3cret' })).toThrow(
      'url: expected an amqp:// or amqps:// URL with a host, found text that is not a URL',
    );
  });
});
