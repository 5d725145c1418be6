/**
 * The logging calls this package makes: a fields object first, then a fixed message, as pino
 * takes them. A pino `Logger` (or a child of one) fits this interface as it is.
 */
export interface InferenceLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Used when no logger is given: the package then says nothing. */
export const silentLogger: InferenceLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
};
