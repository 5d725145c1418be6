import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as core from '../src/index.ts';
import { ERROR_CODES, WarrenError } from '../src/index.ts';

const docs = readFileSync(new URL('../../../docs/error-codes.md', import.meta.url), 'utf-8');

type ErrorClass = (new (...args: never[]) => WarrenError) & { name: string };

const errorClasses: ErrorClass[] = Object.values(core as Record<string, unknown>).filter(
  (value): value is ErrorClass =>
    typeof value === 'function' && value.prototype instanceof WarrenError,
);

describe('error codes', () => {
  it.each(ERROR_CODES)('documents %s in docs/error-codes.md', (code) => {
    expect(docs).toContain(`\`${code}\``);
  });

  it('gives every exported error class its own code, listed in ERROR_CODES', () => {
    const codes = errorClasses.map((ErrorClass) => {
      const error = Reflect.construct(ErrorClass, ['reason-or-message', 'message']) as WarrenError;
      expect(error.name).toBe(ErrorClass.name);
      expect(ERROR_CODES).toContain(error.code);
      return error.code;
    });

    expect(new Set(codes).size).toBe(codes.length);
    expect([...codes].sort()).toEqual([...ERROR_CODES].sort());
  });
});
