import { redactServiceUrl, serviceUrlProblem } from '@warren/core';

const PROTOCOLS = new Set(['redis:', 'rediss:']);

/** What {@link redactRedisUrl} returns for a string it cannot read as a Redis URL. */
const UNREADABLE = 'redis://<unreadable url>';

/**
 * A Redis URL fit for logs and error messages: scheme, host, port and database, without the
 * user, the password or the query.
 *
 * @example
 * redactRedisUrl('redis://warren:s3cret@cache:6379/2'); // 'redis://cache:6379/2'
 */
export function redactRedisUrl(url: string): string {
  return redactServiceUrl(url, PROTOCOLS, UNREADABLE);
}

/** A URL's path that names a database: none, or `/` and its number. */
const DATABASE_PATH = /^\/?(\d+)?$/;

/** What is wrong with `url` as a Redis URL, in words that never repeat its credentials. */
export function redisUrlProblem(url: string): string | undefined {
  const problem = serviceUrlProblem(url, PROTOCOLS);
  if (problem !== undefined) return problem;
  // The client would send it as SELECT's argument, and on a refusal carry on in database 0.
  const path = new URL(url).pathname;
  if (!DATABASE_PATH.test(path)) return `the database ${JSON.stringify(path)}, not a number`;
  return undefined;
}
