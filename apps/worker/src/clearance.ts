import {
  type Clearance,
  ConfigError,
  DEFAULT_CLEARANCE,
  type Handler,
  narrowClearance,
  type RelayOptions,
  type Transport,
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
 * The accounts this worker trusts as relays: `security.relays`, else the account its transport
 * connects as (every worker of a fleet sharing one account is the common case).
 */
export function relayFor(config: WorkerConfig, transport: Transport): RelayOptions {
  const own = transport.account;
  return { trusted: config.security.relays ?? (own === undefined ? [] : [own]) };
}
