import type { z } from 'zod';

export interface DescribeOptions {
  /** Prefix of every path, such as `config` or `input`. */
  root?: string;
  /**
   * Whether to quote the values found (right for config files). Off for message bodies, whose
   * content must not reach logs: then only the kind of value is named.
   */
  showValues?: boolean;
}

/**
 * Turns zod issues into one readable line: `path: expected what, found what; ...`. Parse with
 * `{ reportInput: true }` so the issues carry what was found.
 */
export function describeIssues(error: z.ZodError, options: DescribeOptions = {}): string {
  return error.issues
    .map((issue) => `${formatPath(options.root, issue.path)}: ${describeIssue(issue, options)}`)
    .join('; ');
}

function formatPath(root: string | undefined, path: readonly PropertyKey[]): string {
  let text = root ?? '';
  for (const key of path) {
    text += typeof key === 'number' ? `[${key}]` : text === '' ? String(key) : `.${String(key)}`;
  }
  return text === '' ? '(root)' : text;
}

function describeIssue(issue: z.core.$ZodIssue, options: DescribeOptions): string {
  const found = 'input' in issue ? describeValue(issue.input, options.showValues ?? false) : '';
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}, found ${found || 'something else'}`;
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? 'at least' : 'at most';
      const limit = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const unit = unitOf(issue.origin);
      return `expected ${bound} ${String(limit)}${unit}, found ${found || 'a value out of range'}`;
    }
    case 'unrecognized_keys':
      return `unexpected field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, found ${found}`;
    default:
      // A refinement's input is the whole object it refines, which says nothing of the field.
      return found && !isObject(issue.input) ? `${issue.message}, found ${found}` : issue.message;
  }
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}

function unitOf(origin: string): string {
  if (origin === 'string') return ' characters';
  if (origin === 'array' || origin === 'set') return ' items';
  return '';
}

/**
 * A value as an error message shows it: strings quoted, arrays and objects by kind only (their
 * content may be long or secret), and only the type unless `showValues`.
 */
export function describeValue(value: unknown, showValues: boolean): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (!showValues) return `a ${typeof value}`;
  const text =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'bigint'
        ? `${value}n`
        : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
