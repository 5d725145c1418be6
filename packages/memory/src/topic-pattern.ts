/**
 * Whether a topic binding pattern matches a routing key, as RabbitMQ's topic exchange decides:
 * both are dot-separated words, `*` stands for exactly one word and `#` for zero or more. Empty
 * words count (`a..b` has three); the empty key has none.
 */
export function matchesTopic(pattern: string, routingKey: string): boolean {
  const patternWords = words(pattern);
  const keyWords = words(routingKey);
  // known[p][k]: whether patternWords from p match keyWords from k; filled on demand.
  const known: (boolean | undefined)[][] = patternWords.map(() => []);
  // One check per (p, k) pair; the patterns Warren uses are a few words long.
  const match = (p: number, k: number): boolean => {
    if (p === patternWords.length) return k === keyWords.length;
    const cached = known[p]![k];
    if (cached !== undefined) return cached;
    const word = patternWords[p];
    let result: boolean;
    if (word === '#') {
      result = match(p + 1, k) || (k < keyWords.length && match(p, k + 1));
    } else {
      result = k < keyWords.length && (word === '*' || word === keyWords[k]) && match(p + 1, k + 1);
    }
    known[p]![k] = result;
    return result;
  };
  return match(0, 0);
}

function words(dotted: string): string[] {
  return dotted === '' ? [] : dotted.split('.');
}
