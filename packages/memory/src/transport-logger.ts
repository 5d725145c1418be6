/**
 * The part of a pino `Logger` the transport writes to: a fields object first, then a fixed
 * message. The same shape as `@warren/amqp`'s, so one logger serves either transport.
 */
export interface TransportLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

function discard(): void {}

/** The default logger: writes nothing. */
export const silentLogger: TransportLogger = {
  debug: discard,
  info: discard,
  warn: discard,
  error: discard,
};

/** One line that says why something failed. */
export function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
