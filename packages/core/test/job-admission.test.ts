import { describe, expect, it } from 'vitest';
import { ConsumerTimeoutError } from '../src/errors.ts';
import { prepare } from '../src/job-admission.ts';
import type { JobDeps, JobItem } from '../src/job-steps.ts';

/** What `prepare` reads of a job's dependencies, at clock time 10,000 ms. */
const deps = {
  clock: { now: () => 10_000 },
  consumerTimeoutMs: 5_000,
  deadlines: { skewMs: 0, onExpired: 'dead-letter' },
} as unknown as JobDeps;

function itemReceivedAt(receivedAt: number): JobItem {
  return {
    delivery: {} as JobItem['delivery'],
    receivedAt,
    envelope: { messageId: 'm-1' } as JobItem['envelope'],
  };
}

describe('admitting a job to its handler', () => {
  it("refuses one that waited until no time is left of the broker's consumer timeout", async () => {
    // Held 4,600 ms of 5,000, of which a tenth is kept back: nothing left to run in.
    const item = itemReceivedAt(5_400);

    expect(await prepare(item, deps)).toBeUndefined();
    expect(item.failure).toBeInstanceOf(ConsumerTimeoutError);
    expect(item.failure!.message).toMatch(
      /^its batch waited 4600 ms since its first delivery arrived/,
    );
  });

  it('lets one with time left run, and says how much', async () => {
    // Held 4,000 ms: 500 ms left before the 4,500 ms a delivery may be held.
    const item = itemReceivedAt(6_000);

    expect(await prepare(item, deps)).toEqual({ item, remaining: undefined, timeoutLeft: 500 });
    expect(item.failure).toBeUndefined();
  });
});
