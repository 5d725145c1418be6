/**
 * The part of a pino `Logger` that Warren's packages write to: a fields object first, then a
 * fixed message. Any pino logger fits; so does a test double.
 */
export interface LogSink {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

function discard(): void {}

/** The default where no logger is given: writes nothing. */
export const silentLogSink: LogSink = {
  debug: discard,
  info: discard,
  warn: discard,
  error: discard,
};
