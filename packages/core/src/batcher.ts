import type { BatchOptions } from './handler.ts';
import type { Delivery } from './transport.ts';

/** Deliveries waiting for their batch to fill, and their estimated tokens. */
export interface PendingBatch {
  deliveries: readonly Delivery[];
  tokens: number;
  /** When its first delivery arrived (the consumer's clock, ms); 0 while empty. */
  since: number;
}

/** A batch ready to start, and when its first delivery arrived. */
export interface ReadyBatch {
  deliveries: Delivery[];
  since: number;
}

export const EMPTY_BATCH: PendingBatch = { deliveries: [], tokens: 0, since: 0 };

/** Bytes per token for the budget's estimate: about right for English text. */
const BYTES_PER_TOKEN = 4;

export function estimateTokens(delivery: Delivery): number {
  return Math.ceil(delivery.body.length / BYTES_PER_TOKEN);
}

/**
 * Adds a delivery that arrived at `now` to the pending batch. Returns the batches now complete
 * (full by size or token budget), in order, and what stays pending. A delivery that would push
 * the batch past its token budget closes the batch before it; one over the budget on its own
 * goes alone.
 */
export function addToBatch(
  pending: PendingBatch,
  delivery: Delivery,
  options: BatchOptions,
  now: number,
): { ready: ReadyBatch[]; pending: PendingBatch } {
  const tokens = estimateTokens(delivery);
  const ready: ReadyBatch[] = [];
  let { deliveries, tokens: pendingTokens, since } = pending;
  const budget = options.maxTokens;
  if (budget !== undefined && deliveries.length > 0 && pendingTokens + tokens > budget) {
    ready.push({ deliveries: [...deliveries], since });
    deliveries = EMPTY_BATCH.deliveries;
    pendingTokens = 0;
  }
  if (deliveries.length === 0) since = now;
  const grown = deliveries.length === 0 ? [delivery] : [...deliveries, delivery];
  const total = pendingTokens + tokens;
  if (grown.length >= options.maxSize || (budget !== undefined && total >= budget)) {
    ready.push({ deliveries: grown, since });
    return { ready, pending: EMPTY_BATCH };
  }
  return { ready, pending: { deliveries: grown, tokens: total, since } };
}
