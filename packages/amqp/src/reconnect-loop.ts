import type { ConnectionEvent, LogSink } from '@warren/core';
import { pause } from './abortable.ts';
import { describeCause } from './cause.ts';
import { backoffDelay, type RecoveryPolicy } from './recovery-policy.ts';

/** How a reconnect loop ended. */
export type ReconnectOutcome =
  | { kind: 'recovered'; attempts: number; downtimeMs: number }
  | { kind: 'gave-up'; attempts: number; downtimeMs: number; cause: Error }
  | { kind: 'stopped' };

export interface ReconnectLoopOptions {
  policy: RecoveryPolicy;
  /** Why the connection was lost. */
  cause: Error;
  /** Aborted when the transport closes: the loop stops at once. */
  signal: AbortSignal;
  /** One attempt: connect and restore everything before `giveUpAt` (epoch ms), or reject. */
  attempt: (giveUpAt: number) => Promise<void>;
  /** Told before each attempt, with the delay it waits first. */
  onAttempt: (event: Extract<ConnectionEvent, { type: 'recovering' }>) => void;
  logger: LogSink;
  fields: object;
}

/**
 * Tries to reconnect with exponential backoff and jitter until an attempt succeeds, the policy's
 * time to give up (counted from the loss) passes, or the signal aborts.
 */
export async function reconnectLoop(options: ReconnectLoopOptions): Promise<ReconnectOutcome> {
  const { policy, signal, logger, fields } = options;
  const lostAt = Date.now();
  const giveUpAt = lostAt + policy.giveUpAfterMs;
  let lastCause = options.cause;
  const gaveUp = (attempts: number): ReconnectOutcome => {
    return { kind: 'gave-up', attempts, downtimeMs: Date.now() - lostAt, cause: lastCause };
  };

  for (let attempt = 1; ; attempt += 1) {
    const left = giveUpAt - Date.now();
    if (left <= 0) return gaveUp(attempt - 1);
    const delayMs = Math.min(backoffDelay(policy, attempt), left);
    logger.debug({ ...fields, attempt, delayMs }, 'broker reconnect scheduled');
    options.onAttempt({ type: 'recovering', attempt, delayMs, cause: lastCause });
    await pause(delayMs, signal);
    if (signal.aborted) return { kind: 'stopped' };
    if (Date.now() >= giveUpAt) return gaveUp(attempt - 1);

    try {
      await options.attempt(giveUpAt);
      return { kind: 'recovered', attempts: attempt, downtimeMs: Date.now() - lostAt };
    } catch (error) {
      if (signal.aborted) return { kind: 'stopped' };
      // An attempt cut short by the time to give up says less than the failure before it.
      if (Date.now() < giveUpAt || attempt === 1) {
        lastCause = error instanceof Error ? error : new Error(describeCause(error));
      }
      logger.warn({ ...fields, attempt, error: describeCause(error) }, 'broker reconnect failed');
    }
  }
}
