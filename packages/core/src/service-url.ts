/**
 * What is wrong with `url` as a URL of one of `protocols` (such as `amqp:`), in words that never
 * repeat its credentials; undefined when nothing is.
 */
export function serviceUrlProblem(url: string, protocols: ReadonlySet<string>): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'text that is not a URL';
  }
  if (!protocols.has(parsed.protocol)) return `the scheme ${JSON.stringify(parsed.protocol)}`;
  if (parsed.hostname === '') return 'no host';
  return undefined;
}

/**
 * A service URL fit for logs and error messages: scheme, host, port and path, without the user,
 * the password or the query (whose parameters may name key files or carry passwords). A string
 * that is not such a URL becomes `unreadable`.
 */
export function redactServiceUrl(
  url: string,
  protocols: ReadonlySet<string>,
  unreadable: string,
): string {
  if (serviceUrlProblem(url, protocols) !== undefined) return unreadable;
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}
