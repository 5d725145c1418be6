/**
 * One line that says why something failed. Node's connection errors can have an empty message
 * (an `AggregateError` when a host name resolves to several addresses), so their codes stand in.
 */
export function describeCause(cause: unknown): string {
  if (cause instanceof AggregateError && cause.message === '') {
    const inner = cause.errors.map(describeCause);
    return inner.length > 0 ? [...new Set(inner)].join('; ') : codeOf(cause);
  }
  if (cause instanceof Error) return cause.message === '' ? codeOf(cause) : cause.message;
  return String(cause);
}

function codeOf(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.name;
}

/** The AMQP reply code amqplib puts on errors from a channel or connection close. */
export function replyCodeOf(cause: unknown): number | undefined {
  if (typeof cause !== 'object' || cause === null) return undefined;
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}
