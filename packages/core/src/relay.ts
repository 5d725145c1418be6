import { HEADERS } from './envelope.ts';
import type { Delivery, MessageProperties } from './transport.ts';

/**
 * Workers republish jobs (retries, deferrals, dead letters, give-backs), and RabbitMQ stamps no
 * `user_id` a worker did not set, nor accepts one that is not the worker's own account. So a
 * republished job carries the worker's account as `user_id` and the original producer's in
 * `x-warren-producer`; a consumer believes that header, and a retry's raised attempt, only from
 * an account it trusts as a relay (the workers' accounts). A producer cannot pass for a relay,
 * because the broker checks `user_id` against the account that connected.
 */
export interface RelayOptions {
  /**
   * The broker account this worker publishes as (its transport's `account`, which may change
   * when credentials rotate); absent, republished jobs carry no `user_id`.
   */
  user?: string | undefined;
  /** The accounts whose republished jobs are believed (the fleet's worker accounts). */
  trusted: readonly string[];
}

/** Whether the delivery was republished by a trusted worker account. */
export function isRelayed(properties: MessageProperties, relay: RelayOptions | undefined): boolean {
  const userId = properties.userId;
  return userId !== undefined && (relay?.trusted.includes(userId) ?? false);
}

/** Whether a trusted relay marked the delivery as never verified (see `x-warren-unverified`). */
export function isUnverified(
  properties: MessageProperties,
  relay: RelayOptions | undefined,
): boolean {
  return isRelayed(properties, relay) && properties.headers?.[HEADERS.unverified] === true;
}

/**
 * The account that published the job in the first place: the `x-warren-producer` a trusted relay
 * recorded, else the delivery's own `user_id`.
 */
export function producerOf(
  properties: MessageProperties,
  relay: RelayOptions | undefined,
): string | undefined {
  if (!isRelayed(properties, relay)) return properties.userId;
  const recorded = properties.headers?.[HEADERS.producer];
  return typeof recorded === 'string' && recorded !== '' ? recorded : undefined;
}

/**
 * The properties of a job this worker republishes: its own account as `user_id` (the broker
 * would refuse the original's), the original producer kept in `x-warren-producer`.
 */
export function relayedProperties(
  delivery: Delivery,
  properties: MessageProperties,
  relay: RelayOptions | undefined,
  options: { unverified?: boolean } = {},
): MessageProperties {
  const { userId: _original, ...rest } = properties;
  const headers = { ...rest.headers };
  // Set only for this republish, never carried over from an earlier one.
  if (options.unverified) headers[HEADERS.unverified] = true;
  else delete headers[HEADERS.unverified];
  const producer = producerOf(delivery.properties, relay);
  if (producer === undefined) delete headers[HEADERS.producer];
  else headers[HEADERS.producer] = producer;
  return relay?.user === undefined
    ? { ...rest, headers }
    : { ...rest, headers, userId: relay.user };
}
