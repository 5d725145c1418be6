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
  if (redisUrlProblem(url) !== undefined) return UNREADABLE;
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/** What is wrong with `url` as a Redis URL, in words that never repeat its credentials. */
export function redisUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'text that is not a URL';
  }
  if (!PROTOCOLS.has(parsed.protocol)) return `the scheme ${JSON.stringify(parsed.protocol)}`;
  if (parsed.hostname === '') return 'no host';
  return undefined;
}
