import { describe, expect, it } from 'vitest';
import type { Clock, Timer } from '../src/clock.ts';
import { MemoryDedupeStore } from '../src/dedupe.ts';
import { ConfigError, IllegalStateError } from '../src/errors.ts';

/** A clock that moves only when the test says so. */
class FakeClock implements Clock {
  #now = 1_700_000_000_000;

  now(): number {
    return this.#now;
  }

  setTimer(): Timer {
    throw new Error('the memory dedupe store should not need timers');
  }

  advance(ms: number): void {
    this.#now += ms;
  }
}

function storeWithClock(maxEntries?: number): { store: MemoryDedupeStore; clock: FakeClock } {
  const clock = new FakeClock();
  const options = maxEntries === undefined ? { clock } : { clock, maxEntries };
  return { store: new MemoryDedupeStore(options), clock };
}

describe('MemoryDedupeStore', () => {
  it('claims an unseen id, then answers in-progress while the claim holds', async () => {
    const { store } = storeWithClock();

    expect(await store.claim('m-1', 1_000)).toBe('claimed');
    expect(await store.claim('m-1', 1_000)).toBe('in-progress');
    expect(await store.claim('m-2', 1_000)).toBe('claimed');
  });

  it('answers done to every claim after complete, until the done ttl passes', async () => {
    const { store, clock } = storeWithClock();
    await store.claim('m-1', 1_000);
    await store.complete('m-1', 60_000);

    expect(await store.claim('m-1', 1_000)).toBe('done');
    clock.advance(59_999);
    expect(await store.claim('m-1', 1_000)).toBe('done');
    clock.advance(1);
    expect(await store.claim('m-1', 1_000)).toBe('claimed');
  });

  it('lets another worker claim an id whose lease expired, as when a worker dies mid-job', async () => {
    const { store, clock } = storeWithClock();
    await store.claim('m-1', 100);

    clock.advance(99);
    expect(await store.claim('m-1', 100)).toBe('in-progress');
    clock.advance(1);
    expect(await store.claim('m-1', 100)).toBe('claimed');
  });

  it('makes a released id claimable again at once', async () => {
    const { store } = storeWithClock();
    await store.claim('m-1', 60_000);

    await store.release('m-1');

    expect(await store.claim('m-1', 60_000)).toBe('claimed');
  });

  it('does not erase done when a late release arrives after complete', async () => {
    const { store } = storeWithClock();
    await store.claim('m-1', 60_000);
    await store.complete('m-1', 60_000);

    await store.release('m-1');

    expect(await store.claim('m-1', 60_000)).toBe('done');
  });

  it('ignores a release of an id it never saw', async () => {
    const { store } = storeWithClock();

    await store.release('never-claimed');

    expect(await store.claim('never-claimed', 1_000)).toBe('claimed');
  });

  it('marks an id done even when complete comes without a claim', async () => {
    const { store } = storeWithClock();

    await store.complete('m-1', 1_000);

    expect(await store.claim('m-1', 1_000)).toBe('done');
  });

  it('gives exactly one claimed among many concurrent claims of one id', async () => {
    const { store } = storeWithClock();

    const results = await Promise.all(Array.from({ length: 50 }, () => store.claim('m-1', 1_000)));

    expect(results.filter((result) => result === 'claimed')).toHaveLength(1);
    expect(results.filter((result) => result === 'in-progress')).toHaveLength(49);
  });

  it('drops an expired entry when it is next looked at', async () => {
    const { store, clock } = storeWithClock();
    await store.claim('m-1', 100);
    expect(store.size).toBe(1);

    clock.advance(100);
    await store.release('m-1');

    expect(store.size).toBe(0);
  });

  it('never holds more than maxEntries, forgetting the least recently written first', async () => {
    const { store } = storeWithClock(3);
    await store.claim('a', 60_000);
    await store.claim('b', 60_000);
    await store.claim('c', 60_000);
    await store.complete('a', 60_000);

    await store.claim('d', 60_000);

    expect(store.size).toBe(3);
    expect(await store.claim('b', 60_000)).toBe('claimed');
    expect(await store.claim('a', 60_000)).toBe('done');
    expect(store.size).toBe(3);
  });

  it('refuses a lease or ttl that is not a whole number of milliseconds above zero', async () => {
    const { store } = storeWithClock();

    await expect(store.claim('m-1', 0)).rejects.toThrow(
      'leaseMs: expected a whole number of milliseconds above 0, found 0',
    );
    await expect(store.claim('m-1', Number.NaN)).rejects.toThrow(RangeError);
    await expect(store.complete('m-1', -5)).rejects.toThrow('ttlMs');
    expect(store.size).toBe(0);
  });

  it('refuses a maxEntries below one with a ConfigError naming the field', () => {
    expect(() => new MemoryDedupeStore({ maxEntries: 0 })).toThrow(ConfigError);
    expect(() => new MemoryDedupeStore({ maxEntries: 1.5 })).toThrow('maxEntries');
  });

  it('forgets everything on close and refuses later calls with an IllegalStateError', async () => {
    const { store } = storeWithClock();
    await store.claim('m-1', 1_000);

    await store.close();

    expect(store.size).toBe(0);
    await expect(store.claim('m-1', 1_000)).rejects.toThrow(IllegalStateError);
    await expect(store.complete('m-1', 1_000)).rejects.toThrow('complete() after close()');
    await expect(store.release('m-1')).rejects.toThrow(IllegalStateError);
  });

  it('reads the system clock when none is given', async () => {
    const store = new MemoryDedupeStore();

    expect(await store.claim('m-1', 60_000)).toBe('claimed');
    expect(await store.claim('m-1', 60_000)).toBe('in-progress');
  });
});
