/**
 * RabbitMQ matches a permission's regular expression (PCRE) anywhere in a name unless it is
 * anchored, and `.` in a name matches any character unless escaped: `^warren.jobs.a.b` would
 * grant `warren-jobs-aXb` too. Every pattern built here is escaped and anchored at both ends.
 */

/** `name` as a pattern that matches it and nothing else. */
export function escapeRegex(name: string): string {
  return name.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

/**
 * One anchored pattern matching any of `fragments` (patterns, already escaped) in full. None
 * gives `^$`: RabbitMQ's way to grant nothing, as no resource has an empty name.
 */
export function anchored(fragments: Iterable<string>): string {
  const unique = [...new Set(fragments)].sort();
  if (unique.length === 0) return '^$';
  // A lone fragment keeps its plain form for the reader, unless an alternation needs a group.
  if (unique.length === 1 && !unique[0]!.includes('|')) return `^${unique[0]}$`;
  return `^(?:${unique.join('|')})$`;
}
