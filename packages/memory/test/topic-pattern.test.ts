import { describe, expect, it } from 'vitest';
import { matchesTopic } from '../src/topic-pattern.ts';

const KEYS = ['', 'a', 'a.b', 'a.c.b', 'a..b', 'b', '.', 'a.', 'x.a.b'];

/** What RabbitMQ 3.10.8 routed for each pattern, observed with these keys. */
const RABBITMQ_ROUTES: Record<string, string[]> = {
  '#': KEYS,
  '*': ['a', 'b'],
  'a.#': ['a', 'a.b', 'a.c.b', 'a..b', 'a.'],
  'a.*': ['a.b', 'a.'],
  '#.b': ['a.b', 'a.c.b', 'a..b', 'b', 'x.a.b'],
  'a.#.b': ['a.b', 'a.c.b', 'a..b'],
  '*.*': ['a.b', '.', 'a.'],
  a: ['a'],
  '': [''],
  '#.#': KEYS,
  'a.*.#': ['a.b', 'a.c.b', 'a..b', 'a.'],
  'a..b': ['a..b'],
};

describe('matchesTopic', () => {
  for (const [pattern, routed] of Object.entries(RABBITMQ_ROUTES)) {
    it(`matches "${pattern}" against the same keys as RabbitMQ does`, () => {
      expect(KEYS.filter((key) => matchesTopic(pattern, key))).toEqual(routed);
    });
  }

  it("routes Warren's <modelType>.<scope> keys to <modelType>.# and not to another model type", () => {
    expect(matchesTopic('feature-extraction.#', 'feature-extraction.tenant-a')).toBe(true);
    expect(matchesTopic('feature-extraction.#', 'feature-extraction.tenant.a.b')).toBe(true);
    expect(matchesTopic('feature-extraction.#', 'text-classification.public')).toBe(false);
  });
});
