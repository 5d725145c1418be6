import type { ClassificationLabel, Pooling } from '@warren/core';

/**
 * Feature-extraction responses as endpoints return them, mapped to one vector per input:
 * - `number[]`: the one vector of a single input;
 * - `number[][]`: one vector per input, or the token vectors of a single input (pooled);
 * - `number[][][]`: token vectors per input (pooled).
 * Anything else throws, naming the shape that arrived.
 */
export function vectorsFromResponse(
  response: unknown,
  inputCount: number,
  pooling: Pooling,
): number[][] {
  if (isVector(response) && inputCount === 1) return [response];
  if (isMatrix(response) && response.length === inputCount) return response;
  if (isMatrix(response) && inputCount === 1) return [poolTokens(response, pooling)];
  if (isCube(response) && response.length === inputCount) {
    return response.map((tokens) => poolTokens(tokens, pooling));
  }
  throw new Error(`expected ${inputCount} vector(s), got ${describeShape(response)}`);
}

/** The endpoint's labels for one input, best first, at most `topK`. */
export function bestLabels(labels: ClassificationLabel[], topK: number): ClassificationLabel[] {
  return [...labels].sort((a, b) => b.score - a.score).slice(0, topK);
}

function isVector(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === 'number');
}

function isMatrix(value: unknown): value is number[][] {
  return Array.isArray(value) && value.length > 0 && value.every(isVector);
}

function isCube(value: unknown): value is number[][][] {
  return Array.isArray(value) && value.length > 0 && value.every(isMatrix);
}

function poolTokens(tokens: number[][], pooling: Pooling): number[] {
  const first = tokens[0] ?? [];
  if (pooling === 'cls') return first;

  return first.map(
    (_, k) => tokens.reduce((sum, token) => sum + (token[k] ?? 0), 0) / tokens.length,
  );
}

function describeShape(value: unknown): string {
  if (isVector(value)) return `one vector of ${value.length} numbers`;
  if (isMatrix(value)) return `${value.length} vectors`;
  if (isCube(value)) return `token vectors for ${value.length} inputs`;
  return Array.isArray(value) ? 'an array that is not of numbers' : `a ${typeof value}`;
}
