import { z } from 'zod';

/**
 * When and how often a failed job is tried again. Delays grow exponentially up to a cap; jitter
 * spreads them over a few fixed values per step, because each distinct delay needs a queue of
 * its own (see {@link QueueTopology.delayQueues}).
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. 1 means never retry. */
  maxAttempts: number;
  /** The delay after the first failure. */
  initialDelayMs: number;
  /** Each later delay is this many times the one before. */
  multiplier: number;
  /** No delay is longer than this. */
  maxDelayMs: number;
  /** Spread of each delay, as a fraction of it (0 to 0.5): 0.2 means 80% to 120%. */
  jitter: number;
}

/**
 * The fields of a retry policy as a config file gives them, each optional (it overrides the
 * handler's own field by field). The worker config and the permissions declaration share it:
 * the policy decides the delay queues, so both must read it alike.
 */
export const retryPolicyOverrides = z
  .object({
    maxAttempts: z.int().min(1).max(10_000),
    initialDelayMs: z.int().min(1),
    multiplier: z.number().min(1).max(100),
    maxDelayMs: z.int().min(1),
    jitter: z.number().min(0).max(0.5),
  })
  .partial()
  .strict();

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 1_000,
  multiplier: 2,
  maxDelayMs: 60_000,
  jitter: 0.2,
});

/** How many values jitter spreads a delay over; each is one more delay queue. */
const JITTER_SLOTS = 3;

/** The delay after failed attempt `attempt` (1-based), before attempt `attempt + 1`. */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const slots = delaySlots(policy, attempt);
  return slots[Math.min(slots.length - 1, Math.floor(random() * slots.length))]!;
}

/**
 * Every delay the policy can produce, ascending and without repeats: one queue each. The first
 * step is always there, even without retries: a job held by another worker waits in it.
 */
export function allRetryDelays(policy: RetryPolicy): number[] {
  const delays = new Set<number>();
  for (let attempt = 1; attempt < Math.max(2, policy.maxAttempts); attempt += 1) {
    for (const delay of delaySlots(policy, attempt)) delays.add(delay);
  }
  return [...delays].sort((a, b) => a - b);
}

function delaySlots(policy: RetryPolicy, attempt: number): number[] {
  const base = Math.min(
    policy.maxDelayMs,
    policy.initialDelayMs * policy.multiplier ** (attempt - 1),
  );
  if (policy.jitter === 0) return [Math.round(base)];
  const slots: number[] = [];
  for (let slot = 0; slot < JITTER_SLOTS; slot += 1) {
    const spread = policy.jitter * ((2 * slot) / (JITTER_SLOTS - 1) - 1);
    slots.push(Math.max(1, Math.round(Math.min(policy.maxDelayMs, base * (1 + spread)))));
  }
  return [...new Set(slots)];
}

/** Checks a policy's numbers; returns a message naming the first bad field, or undefined. */
export function retryPolicyProblem(policy: RetryPolicy): string | undefined {
  if (
    !Number.isInteger(policy.maxAttempts) ||
    policy.maxAttempts < 1 ||
    policy.maxAttempts > 10_000
  ) {
    return `maxAttempts: expected an integer from 1 to 10000, found ${policy.maxAttempts}`;
  }
  if (!(policy.initialDelayMs >= 1))
    return `initialDelayMs: expected at least 1, found ${policy.initialDelayMs}`;
  if (!(policy.multiplier >= 1))
    return `multiplier: expected at least 1, found ${policy.multiplier}`;
  if (!(policy.maxDelayMs >= policy.initialDelayMs)) {
    return `maxDelayMs: expected at least initialDelayMs (${policy.initialDelayMs}), found ${policy.maxDelayMs}`;
  }
  if (!(policy.jitter >= 0 && policy.jitter <= 0.5))
    return `jitter: expected 0 to 0.5, found ${policy.jitter}`;
  return undefined;
}
