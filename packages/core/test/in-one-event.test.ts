import { describe, expect, it } from 'vitest';
import { inOneEvent } from '../src/consumer-subscription.ts';

/** A `defer` that holds its callbacks until the test runs them. */
function heldDefer() {
  const waiting: Array<() => void> = [];
  return {
    defer: (flush: () => void) => void waiting.push(flush),
    runAll: () => {
      for (const flush of waiting.splice(0)) flush();
    },
    get count() {
      return waiting.length;
    },
  };
}

describe('inOneEvent', () => {
  it('passes on everything that arrived before its deferred flush as one list', () => {
    const sent: number[][] = [];
    const held = heldDefer();
    const take = inOneEvent<number>((items) => sent.push(items), held.defer);
    take(1);
    take(2);
    take(3);
    expect(sent).toEqual([]);
    expect(held.count).toBe(1);
    held.runAll();
    take(4);
    held.runAll();
    expect(sent).toEqual([[1, 2, 3], [4]]);
  });

  it('sends an urgent item at once with what was gathered before it, and nothing twice', () => {
    const sent: number[][] = [];
    const held = heldDefer();
    const take = inOneEvent<number>(
      (items) => sent.push(items),
      held.defer,
      (n) => n < 0,
    );
    take(1);
    take(-1);
    expect(sent).toEqual([[1, -1]]);
    take(-2);
    expect(sent).toEqual([[1, -1], [-2]]);
    take(5);
    // The flush deferred for 1 runs first and takes 5; the one deferred for 5 finds nothing.
    held.runAll();
    expect(sent).toEqual([[1, -1], [-2], [5]]);
  });

  it('gathers until the microtasks have run by default', async () => {
    const sent: string[][] = [];
    const take = inOneEvent<string>((items) => sent.push(items));
    take('a');
    take('b');
    expect(sent).toEqual([]);
    await Promise.resolve();
    expect(sent).toEqual([['a', 'b']]);
  });
});
