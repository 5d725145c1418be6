import type { ClaimResult, DedupeStore } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { ReachabilityTracked } from '../src/dedupe-reachability.ts';
import { waitFor } from './support.ts';

/** A store whose calls fail while `down` holds, counting the releases (what a probe calls). */
function switchableStore(): DedupeStore & { down: boolean; releases: string[] } {
  const store = {
    down: false,
    releases: [] as string[],
    claim: (): Promise<ClaimResult> =>
      store.down ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve('claimed'),
    complete: () => Promise.resolve(),
    release: (messageId: string) => {
      store.releases.push(messageId);
      return store.down ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  return store;
}

describe('a dedupe store tracked for readiness', () => {
  it('is unreachable after a failed call, and probed back to reachable while no job calls it', async () => {
    const store = switchableStore();
    const tracked = new ReachabilityTracked(store, { probeEveryMs: 10 });
    expect(tracked.reachable).toBe(true);

    store.down = true;
    await expect(tracked.claim('job-1', 1_000)).rejects.toThrow('ECONNREFUSED');
    expect(tracked.reachable).toBe(false);
    await waitFor(() => store.releases.length >= 2, 'probes while down');
    expect(tracked.reachable).toBe(false);

    store.down = false;
    await waitFor(() => tracked.reachable, 'a probe to get through');
    const probes = store.releases.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(store.releases.length, 'no probing once reachable').toBe(probes);
    expect(new Set(store.releases)).toEqual(new Set(['warren.reachability-probe']));
    await tracked.close();
  });

  it('counts a store that throws instead of rejecting as unreachable', async () => {
    const throwing: DedupeStore = {
      claim: () => {
        throw new Error('no connection');
      },
      complete: () => Promise.resolve(),
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const tracked = new ReachabilityTracked(throwing, { probeEveryMs: 60_000 });
    await expect(tracked.claim('job-1', 1_000)).rejects.toThrow('no connection');
    expect(tracked.reachable).toBe(false);
    await tracked.close();
  });

  it('lets the latest call decide, not one that started earlier and settled later', async () => {
    let failSlow: (error: Error) => void = () => {};
    const calls: Array<() => Promise<ClaimResult>> = [
      () => new Promise((_, reject) => (failSlow = reject)),
      () => Promise.resolve('claimed'),
    ];
    const store: DedupeStore = {
      claim: () => calls.shift()!(),
      complete: () => Promise.resolve(),
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const tracked = new ReachabilityTracked(store, { probeEveryMs: 60_000 });
    const slow = tracked.claim('job-1', 1_000);
    await tracked.claim('job-2', 1_000);
    failSlow(new Error('timed out connecting'));
    await expect(slow).rejects.toThrow('timed out connecting');
    expect(tracked.reachable).toBe(true);
    await tracked.close();
  });

  it('stops probing when the worker stops, whoever closes the store', async () => {
    const store = switchableStore();
    store.down = true;
    const tracked = new ReachabilityTracked(store, { probeEveryMs: 10 });
    await expect(tracked.claim('job-1', 1_000)).rejects.toThrow('ECONNREFUSED');
    tracked.stopProbing();
    const probes = store.releases.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(store.releases.length).toBe(probes);
  });
});
