import type { ConnectionEvent, ConnectionListener, LogSink } from '@warren/core';
import { describeCause } from './cause.ts';

/** The listeners of one transport's connection events. One that throws is logged and skipped. */
export class ConnectionEvents {
  readonly #listeners = new Set<ConnectionListener>();
  readonly #logger: LogSink;
  readonly #fields: object;

  constructor(logger: LogSink, fields: object) {
    this.#logger = logger;
    this.#fields = fields;
  }

  /** Adds `listener`; returns the function that removes it. */
  add(listener: ConnectionListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  emit(event: ConnectionEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        const detail = { ...this.#fields, event: event.type, error: describeCause(error) };
        this.#logger.error(detail, 'connection listener threw');
      }
    }
  }
}
