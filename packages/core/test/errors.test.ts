import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isWorkerFault } from '../src/errors.ts';
import * as core from '../src/index.ts';
import {
  ERROR_CODES,
  HandlerError,
  isWarrenError,
  toWarrenError,
  WarrenError,
} from '../src/index.ts';

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

describe('Warren errors from another copy of @warren/core', () => {
  it('are still Warren errors, so a bundled plugin keeps its code and fate', async () => {
    // A second instance of the module, as a plugin that bundled @warren/core brings its own.
    const specifier = '../src/errors.ts?another-copy';
    const copy = (await import(specifier)) as typeof import('../src/errors.ts');
    const rejected = new copy.JobRejectedError('cannot ever work');
    expect(rejected instanceof WarrenError, 'a copy, not the same class').toBe(false);

    expect(isWarrenError(rejected)).toBe(true);
    expect(toWarrenError(rejected, (message) => new HandlerError(message))).toBe(rejected);
    expect(isWorkerFault(new copy.PluginError('broken plugin'))).toBe(true);
    expect(isWarrenError(new Error('plain'))).toBe(false);
    expect(isWarrenError({ [Symbol.for('warren.error')]: 'yes' })).toBe(false);
    // The mark alone is not enough: it must be an error with a code and a known fate.
    const marked = { [Symbol.for('warren.error')]: true, code: 'WARREN_X', fate: 'retry' };
    expect(isWarrenError(marked)).toBe(false);
    const fateless = Object.assign(new Error('x'), { [Symbol.for('warren.error')]: true });
    expect(isWarrenError(fateless)).toBe(false);
    expect(isWarrenError(null)).toBe(false);
  });
});
