import { describe, expect, it } from 'vitest';
import { cosine, pearson, spearman } from '../src/sts.ts';

describe('the STS scoring', () => {
  it('computes the cosine of two vectors', () => {
    expect(cosine([1, 0], [1, 0])).toBeCloseTo(1, 12);
    expect(cosine([1, 0], [0, 2])).toBeCloseTo(0, 12);
    // 29.5 / (sqrt(14) * sqrt(62.25))
    expect(cosine([1, 2, 3], [2, 4, 6.5])).toBeCloseTo(0.9992826, 6);
  });

  it('computes Pearson correlation', () => {
    expect(pearson([1, 2, 3, 4], [2, 4, 6, 8])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3, 4], [8, 6, 4, 2])).toBeCloseTo(-1, 12);
    expect(pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])).toBeCloseTo(0.8, 12);
  });

  it('computes Spearman correlation with tied values sharing their mean rank', () => {
    expect(spearman([1, 2, 3, 4], [1, 4, 9, 16])).toBeCloseTo(1, 12);
    // Ranks of [1, 2, 2, 3] are [1, 2.5, 2.5, 4]; Pearson of those with [1, 2, 3, 4].
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(0.9486833, 6);
  });
});
