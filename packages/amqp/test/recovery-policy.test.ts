import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RECOVERY, recoveryPolicy } from '../src/recovery-policy.ts';

describe('backoffDelay', () => {
  const policy = recoveryPolicy();
  const highest = () => 0;
  const lowest = () => 1;

  it('starts at 100 ms and doubles up to a cap of 5 s by default', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) =>
      backoffDelay(policy, attempt, highest),
    );

    expect(delays).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
    expect(DEFAULT_RECOVERY.giveUpAfterMs).toBe(60_000);
  });

  it('takes up to the jitter share off each delay, never adding to it', () => {
    expect(backoffDelay(policy, 1, lowest)).toBe(50);
    expect(backoffDelay(policy, 10, lowest)).toBe(2_500);
    expect(backoffDelay(policy, 10, () => 0.5)).toBe(3_750);
  });

  it('follows the options it is given, and no jitter gives exact delays', () => {
    const custom = recoveryPolicy({
      initialDelayMs: 20,
      multiplier: 3,
      maxDelayMs: 500,
      jitter: 0,
    });

    expect([1, 2, 3, 4].map((attempt) => backoffDelay(custom, attempt, lowest))).toEqual([
      20, 60, 180, 500,
    ]);
  });
});
