import type { Pooling } from '@warren/core';
import type { TensorView } from './text-pipeline.ts';

/**
 * One vector per input from a model's output: `[batch, dim]` is taken as is; `[batch, seq, dim]`
 * is pooled. `cls` takes the first position. `mean` averages the positions the attention mask
 * marks as tokens; when the model's sequence length differs from the mask's (a model that
 * returns one position per input, such as use-lite-en's `[batch, 1, 512]`), all its positions
 * are averaged.
 */
export function poolVectors(hidden: TensorView, mask: TensorView, pooling: Pooling): number[][] {
  const [batch = 0, second = 0, third] = hidden.dims;
  if (hidden.dims.length === 2) return rows(hidden.data, batch, second, (i) => i * second);
  if (hidden.dims.length !== 3 || third === undefined) {
    throw new Error(
      `Expected a model output of 2 or 3 dimensions, got [${hidden.dims.join(', ')}]`,
    );
  }

  const seq = second;
  const dim = third;
  if (pooling === 'cls') return rows(hidden.data, batch, dim, (i) => i * seq * dim);

  const maskSeq = mask.dims[1] ?? 0;
  const useMask = maskSeq === seq;
  const vectors: number[][] = [];
  for (let i = 0; i < batch; i++) {
    const sum = new Array<number>(dim).fill(0);
    let count = 0;
    for (let t = 0; t < seq; t++) {
      if (useMask && Number(mask.data[i * seq + t]) === 0) continue;
      count++;
      const offset = (i * seq + t) * dim;
      for (let k = 0; k < dim; k++) sum[k] = (sum[k] ?? 0) + Number(hidden.data[offset + k]);
    }
    vectors.push(sum.map((value) => value / Math.max(count, 1)));
  }
  return vectors;
}

/** `vector` scaled to length 1 (left as is when it is all zeros). */
export function normalizeVector(vector: number[]): number[] {
  const length = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
  return length === 0 ? vector : vector.map((value) => value / length);
}

function rows(
  data: ArrayLike<number | bigint>,
  count: number,
  width: number,
  start: (row: number) => number,
): number[][] {
  const result: number[][] = [];
  for (let i = 0; i < count; i++) {
    const offset = start(i);
    result.push(Array.from({ length: width }, (_, k) => Number(data[offset + k])));
  }
  return result;
}
