import { ConfigError } from '@warren/core';

/** How {@link AmqpTransport} reconnects after losing its connection. Every field is optional. */
export interface RecoveryOptions {
  /** Delay before the first reconnect attempt, in ms. Default 100. */
  initialDelayMs?: number;
  /** Each later delay is this many times the one before. Default 2. */
  multiplier?: number;
  /** Cap on any delay, in ms. Default 5,000. */
  maxDelayMs?: number;
  /**
   * Share of each delay drawn at random, from 0 to 1: a delay `d` becomes a value between
   * `d × (1 − jitter)` and `d`, so that workers cut off together do not reconnect together.
   * Default 0.5.
   */
  jitter?: number;
  /**
   * How long after the loss to keep trying, in ms; then the transport gives up for good. 0 gives
   * up at once, without recovering. Default 60,000.
   */
  giveUpAfterMs?: number;
}

/** The limits of the outbound buffer: publishes held until the broker confirms them. */
export interface PublishBufferOptions {
  /** Messages held at most, sent or waiting to be. Default 10,000. */
  maxMessages?: number;
  /** Body bytes held at most, sent or waiting to be. Default 64 MiB. */
  maxBytes?: number;
}

export type RecoveryPolicy = Required<RecoveryOptions>;

export const DEFAULT_RECOVERY: RecoveryPolicy = {
  initialDelayMs: 100,
  multiplier: 2,
  maxDelayMs: 5_000,
  jitter: 0.5,
  giveUpAfterMs: 60_000,
};

export const DEFAULT_PUBLISH_BUFFER: Required<PublishBufferOptions> = {
  maxMessages: 10_000,
  maxBytes: 64 * 1024 * 1024,
};

/** How long one connection attempt (TCP and the AMQP handshake) may take, by default. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * The recovery options with their defaults; throws a {@link ConfigError} naming a bad field
 * under `section` (`recovery`, or `rotationRetry` for the same backoff fields there).
 */
export function recoveryPolicy(
  options: RecoveryOptions = {},
  section = 'recovery',
): RecoveryPolicy {
  const policy: RecoveryPolicy = {
    initialDelayMs: options.initialDelayMs ?? DEFAULT_RECOVERY.initialDelayMs,
    multiplier: options.multiplier ?? DEFAULT_RECOVERY.multiplier,
    maxDelayMs: options.maxDelayMs ?? DEFAULT_RECOVERY.maxDelayMs,
    jitter: options.jitter ?? DEFAULT_RECOVERY.jitter,
    giveUpAfterMs: options.giveUpAfterMs ?? DEFAULT_RECOVERY.giveUpAfterMs,
  };
  atLeast(`${section}.initialDelayMs`, policy.initialDelayMs, 0);
  atLeast(`${section}.multiplier`, policy.multiplier, 1);
  atLeast(`${section}.maxDelayMs`, policy.maxDelayMs, policy.initialDelayMs);
  atLeast(`${section}.giveUpAfterMs`, policy.giveUpAfterMs, 0);
  if (!(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw new ConfigError(
      `${section}.jitter: expected a number from 0 to 1, found ${policy.jitter}`,
    );
  }
  return policy;
}

/** The publish buffer limits with their defaults; throws a {@link ConfigError} on a bad one. */
export function publishBufferLimits(
  options: PublishBufferOptions = {},
): Required<PublishBufferOptions> {
  const limits = {
    maxMessages: options.maxMessages ?? DEFAULT_PUBLISH_BUFFER.maxMessages,
    maxBytes: options.maxBytes ?? DEFAULT_PUBLISH_BUFFER.maxBytes,
  };
  atLeast('publishBuffer.maxMessages', limits.maxMessages, 1);
  atLeast('publishBuffer.maxBytes', limits.maxBytes, 1);
  return limits;
}

/** Checks a whole number of milliseconds, at least 1; throws a {@link ConfigError} if not. */
export function checkTimeout(field: string, value: number): void {
  if (!Number.isInteger(value)) {
    throw new ConfigError(`${field}: expected a whole number of milliseconds, found ${value}`);
  }
  atLeast(field, value, 1);
}

/**
 * The delay before reconnect attempt `attempt` (1 for the first): exponential from
 * `initialDelayMs`, capped at `maxDelayMs`, then lowered by up to `jitter` of itself.
 */
export function backoffDelay(
  policy: RecoveryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exponential = policy.initialDelayMs * policy.multiplier ** (attempt - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  return Math.round(capped * (1 - policy.jitter * random()));
}

function atLeast(field: string, value: number, minimum: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < minimum) {
    throw new ConfigError(`${field}: expected a number of at least ${minimum}, found ${value}`);
  }
}
