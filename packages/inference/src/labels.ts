import { type ClassificationLabel, InferenceError } from '@warren/core';

/** Checks a request's `topK` (default 1) and returns it. */
export function checkTopK(topK = 1): number {
  if (!Number.isInteger(topK) || topK < 1) {
    throw new InferenceError(`topK: expected a whole number of at least 1, found ${topK}`);
  }
  return topK;
}

/** How scores are made from logits: softmax across labels, or a sigmoid for each. */
export type ScoreFunction = 'softmax' | 'sigmoid';

/**
 * The `topK` best labels for one row of logits, best first. Labels come from the model's
 * `id2label`, or are `LABEL_<index>` when it has none.
 */
export function topLabels(
  logits: readonly number[],
  scoring: ScoreFunction,
  topK: number,
  id2label: Readonly<Record<string, string>> | undefined,
): ClassificationLabel[] {
  const scores = scoring === 'sigmoid' ? logits.map(sigmoid) : softmax(logits);

  return scores
    .map((score, index) => ({ label: id2label?.[String(index)] ?? `LABEL_${index}`, score }))
    .sort((a, b) => b.score - a.score)
    .slice(0, topK);
}

/** The rows of a `[batch, labels]` logits tensor. */
export function logitRows(data: ArrayLike<number | bigint>, dims: readonly number[]): number[][] {
  const [batch = 0, width = 0] = dims;
  if (dims.length !== 2) throw new Error(`Expected logits of shape [batch, labels], got [${dims}]`);
  return Array.from({ length: batch }, (_, i) =>
    Array.from({ length: width }, (_, k) => Number(data[i * width + k])),
  );
}

function softmax(logits: readonly number[]): number[] {
  const top = Math.max(...logits);
  const exps = logits.map((value) => Math.exp(value - top));
  const total = exps.reduce((sum, value) => sum + value, 0);
  return exps.map((value) => value / total);
}

function sigmoid(value: number): number {
  return 1 / (1 + Math.exp(-value));
}
