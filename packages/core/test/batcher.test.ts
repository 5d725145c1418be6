import { describe, expect, it } from 'vitest';
import { addToBatch, EMPTY_BATCH, type PendingBatch } from '../src/batcher.ts';
import type { Delivery } from '../src/index.ts';

function delivery(tag: number, bytes: number): Delivery {
  return {
    body: Buffer.alloc(bytes),
    properties: {},
    exchange: 'x',
    routingKey: 'k',
    redelivered: false,
    deliveryTag: tag,
    queue: 'q',
  };
}

function feed(
  sizes: number[],
  options: { maxSize: number; maxWaitMs: number; maxTokens?: number },
) {
  let pending: PendingBatch = EMPTY_BATCH;
  const batches: number[][] = [];
  sizes.forEach((bytes, index) => {
    // Delivery n arrives at time 100 + n.
    const step = addToBatch(pending, delivery(index, bytes), options, 100 + index);
    pending = step.pending;
    for (const batch of step.ready) {
      batches.push(batch.deliveries.map((d) => d.deliveryTag));
      expect(batch.since).toBe(100 + batch.deliveries[0]!.deliveryTag);
    }
  });
  if (pending.deliveries.length > 0) {
    expect(pending.since).toBe(100 + pending.deliveries[0]!.deliveryTag);
  }
  return { batches, pending: pending.deliveries.map((d) => d.deliveryTag) };
}

describe('gathering deliveries into batches', () => {
  it('closes a batch when it reaches its size, keeping the rest pending', () => {
    expect(feed([4, 4, 4, 4, 4], { maxSize: 2, maxWaitMs: 5 })).toEqual({
      batches: [
        [0, 1],
        [2, 3],
      ],
      pending: [4],
    });
  });

  it('sends each delivery on at once with a size of 1', () => {
    expect(feed([4, 4], { maxSize: 1, maxWaitMs: 5 }).batches).toEqual([[0], [1]]);
  });

  it('closes a batch before a delivery that would pass the token budget', () => {
    // 40 bytes is 10 tokens; the budget is 25.
    expect(feed([40, 40, 40, 8], { maxSize: 10, maxWaitMs: 5, maxTokens: 25 })).toEqual({
      batches: [[0, 1]],
      pending: [2, 3],
    });
  });

  it('runs a delivery larger than the budget alone', () => {
    expect(feed([8, 400, 8], { maxSize: 10, maxWaitMs: 5, maxTokens: 25 })).toEqual({
      batches: [[0], [1]],
      pending: [2],
    });
  });
});
