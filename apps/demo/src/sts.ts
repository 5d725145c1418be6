import { readFile } from 'node:fs/promises';

/** One STS Benchmark pair with its gold similarity (0 to 5). */
export interface SentencePair {
  score: number;
  first: string;
  second: string;
}

/**
 * Reads an STS Benchmark file: tab-separated, no header; columns genre, source, year, id, score,
 * sentence 1, sentence 2, and sometimes more. A line that does not fit is an error naming it.
 */
export async function readPairs(path: string): Promise<SentencePair[]> {
  const text = await readFile(path, 'utf-8');
  const pairs: SentencePair[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const columns = line.split('\t');
    const score = Number(columns[4]);
    const [first, second] = [columns[5], columns[6]];
    if (!Number.isFinite(score) || !first || !second) {
      throw new Error(
        `${path}:${index + 1}: expected genre, source, year, id, score, sentence 1, sentence 2 separated by tabs`,
      );
    }
    pairs.push({ score, first, second });
  }
  return pairs;
}

export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i += 1) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    normA += x * x;
    normB += y * y;
  }
  return dot / Math.sqrt(normA * normB);
}

export function pearson(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const meanX = xs.reduce((sum, x) => sum + x, 0) / n;
  const meanY = ys.reduce((sum, y) => sum + y, 0) / n;
  let covariance = 0;
  let varianceX = 0;
  let varianceY = 0;
  for (let i = 0; i < n; i += 1) {
    const dx = xs[i]! - meanX;
    const dy = ys[i]! - meanY;
    covariance += dx * dy;
    varianceX += dx * dx;
    varianceY += dy * dy;
  }
  return covariance / Math.sqrt(varianceX * varianceY);
}

/** Spearman's rank correlation: Pearson on ranks, tied values sharing their mean rank. */
export function spearman(xs: readonly number[], ys: readonly number[]): number {
  return pearson(ranks(xs), ranks(ys));
}

function ranks(values: readonly number[]): number[] {
  const order = values.map((value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
  const result = new Array<number>(values.length);
  let start = 0;
  while (start < order.length) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]!.value === order[start]!.value) end += 1;
    const rank = (start + end) / 2 + 1;
    for (let i = start; i <= end; i += 1) result[order[i]!.index] = rank;
    start = end + 1;
  }
  return result;
}
