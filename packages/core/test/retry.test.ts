import { describe, expect, it } from 'vitest';
import {
  allRetryDelays,
  ConfigError,
  DEFAULT_RETRY_POLICY,
  retryDelay,
  topologyFor,
} from '../src/index.ts';

describe('the retry policy', () => {
  const policy = {
    maxAttempts: 4,
    initialDelayMs: 1_000,
    multiplier: 2,
    maxDelayMs: 3_000,
    jitter: 0.2,
  };

  it('grows each delay by the multiplier up to the cap, jitter spreading it over three values', () => {
    expect([0, 0.5, 0.99].map((r) => retryDelay(policy, 1, () => r))).toEqual([800, 1_000, 1_200]);
    expect([0, 0.5, 0.99].map((r) => retryDelay(policy, 2, () => r))).toEqual([
      1_600, 2_000, 2_400,
    ]);
    expect([0, 0.5, 0.99].map((r) => retryDelay(policy, 3, () => r))).toEqual([
      2_400, 3_000, 3_000,
    ]);
  });

  it('lists each distinct delay once, ascending: one delay queue each', () => {
    expect(allRetryDelays(policy)).toEqual([800, 1_000, 1_200, 1_600, 2_000, 2_400, 3_000]);
    expect(allRetryDelays({ ...policy, jitter: 0 })).toEqual([1_000, 2_000, 3_000]);
  });

  it('keeps the first delay queue even without retries, for jobs another worker holds', () => {
    expect(allRetryDelays({ ...policy, maxAttempts: 1, jitter: 0 })).toEqual([1_000]);
  });
});

describe('the topology of a model type', () => {
  it('names one delay queue per delay, and a delivery limit on quorum queues', () => {
    const topology = topologyFor('embed', {
      prefix: 'p',
      retry: { ...DEFAULT_RETRY_POLICY, jitter: 0 },
    });

    expect(topology.delayQueues.map((q) => q.name)).toEqual([
      'p.delay.embed.1000ms',
      'p.delay.embed.2000ms',
      'p.delay.embed.4000ms',
      'p.delay.embed.8000ms',
    ]);
    expect(topology.deliveryLimit).toBe(10);
    expect(topology.maxPriority).toBeUndefined();
  });

  it.each([
    [{ maxPriority: 5 }, 'quorum queues have no priority'],
    [
      { queueType: 'classic' as const, maxPriority: 12 },
      'maxPriority: expected an integer from 1 to 9',
    ],
    [
      { queueType: 'classic' as const, deliveryLimit: 3 },
      'only quorum queues have a delivery limit',
    ],
    [
      {
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 200, multiplier: 1.01, maxDelayMs: 600_000 },
      },
      'delay queues',
    ],
    [{ retry: { ...DEFAULT_RETRY_POLICY, jitter: 0.9 } }, 'retry.jitter: expected 0 to 0.5'],
  ])('refuses %j with a ConfigError that says why', (options, message) => {
    expect(() => topologyFor('embed', options)).toThrow(ConfigError);
    expect(() => topologyFor('embed', options)).toThrow(message);
  });
});
