import {
  type Clearance,
  ConfigError,
  DEFAULT_CLEARANCE,
  type Handler,
  narrowClearance,
  type RelayOptions,
} from '@warren/core';
import type { WorkerConfig } from './config.ts';

type HandlerEntry = WorkerConfig['handlers'][number];

/**
 * A handler's clearance as this worker runs it: the handler's own, narrowed by its config entry.
 * Widening it is a config error, not a silent grant.
 */
export function clearanceFor(handler: Handler, entry: HandlerEntry, index: number): Clearance {
  const narrowed = narrowClearance(handler.clearance ?? DEFAULT_CLEARANCE, entry.clearance);
  if (typeof narrowed === 'string') {
    throw new ConfigError(`config.handlers[${index}].clearance.${narrowed}`);
  }
  return narrowed;
}

/**
 * The account this worker publishes as, and the accounts it trusts as relays. The account is
 * the broker URL's user name, or amqplib's default `guest` when the URL names none.
 */
export function relayFor(config: WorkerConfig): RelayOptions {
  let user = 'guest';
  try {
    user = decodeURIComponent(new URL(config.broker.url).username) || 'guest';
  } catch {
    // The URL was validated already; an unparsable one fails at connect with a clear error.
  }
  return { user, trusted: config.security.relays ?? [user] };
}
