import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeIssues } from '../src/index.ts';

const schema = z.object({
  text: z.string(),
  items: z.array(z.object({ size: z.int().min(1) })),
  mode: z.enum(['a', 'b']),
});

function describe_(value: unknown, showValues: boolean): string {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) throw new Error('expected the value to fail');
  return describeIssues(parsed.error, { root: 'input', showValues });
}

describe('describing validation issues', () => {
  it('names each field, what was expected and what was found, in one line', () => {
    const line = describe_({ text: 42, items: [{ size: 0 }], mode: 'c' }, true);

    expect(line).toBe(
      'input.text: expected string, found 42; input.items[0].size: expected at least 1, found 0; ' +
        'input.mode: expected one of "a", "b", found "c"',
    );
  });

  it('names only the kind of value when values must not be shown', () => {
    const line = describe_({ text: 'secret words', items: [], mode: 'zzz' }, false);

    expect(line).toBe('input.mode: expected one of "a", "b", found a string');
    expect(line).not.toContain('zzz');
  });

  it('says a missing field was found as nothing', () => {
    expect(describe_({ items: [], mode: 'a' }, true)).toBe(
      'input.text: expected string, found nothing',
    );
  });
});
