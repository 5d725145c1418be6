import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/index.ts';
import { PrefetchController } from '../src/prefetch-controller.ts';

function clockAt(start = 0): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    setTimer: () => ({ cancel() {} }),
    advance(ms) {
      now += ms;
    },
  };
}

describe('the adaptive prefetch', () => {
  it('grows by a batch at a time while batches come full and latency holds, up to its maximum', () => {
    const clock = clockAt();
    const controller = new PrefetchController({ min: 4, max: 40 }, 8, clock);
    const seen: number[] = [];
    for (let i = 0; i < 20; i += 1) {
      clock.advance(1_000);
      const next = controller.observe({ size: 8, maxSize: 8, durationMs: 50 });
      if (next !== undefined) seen.push(next);
    }

    expect(seen).toEqual([16, 24, 32, 40]);
    expect(controller.prefetch).toBe(40);
    expect(controller.decisions.every((d) => d.reason === 'batches-full')).toBe(true);
  });

  it('keeps the window under half a consumer timeout of work, and grows no further than that', () => {
    const clock = clockAt();
    // Batches of 8 taking 1 s: half of a 10 s timeout holds 5 batches, 40 deliveries.
    const controller = new PrefetchController(
      { min: 4, max: 200, consumerTimeoutMs: 10_000 },
      100,
      clock,
    );
    const seen: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      clock.advance(1_000);
      const next = controller.observe({ size: 8, maxSize: 8, durationMs: 1_000 });
      if (next !== undefined) seen.push(next);
    }

    expect(seen).toEqual([40]);
    expect(controller.decisions).toEqual([
      { from: 100, to: 40, reason: 'consumer-timeout', at: 4_000 },
    ]);
  });

  it('counts a batch cut short by a full prefetch window as full, since the window is what limits it', () => {
    const clock = clockAt();
    const controller = new PrefetchController({ min: 8, max: 24 }, 8, clock);
    const seen: number[] = [];
    // Batches of 8 against a window of 8 split 1, 7, 1, 7... and never fill by size.
    for (let i = 0; i < 8; i += 1) {
      clock.advance(1_000);
      const size = i % 2 === 0 ? 1 : 7;
      const next = controller.observe({ size, maxSize: 8, durationMs: 40, windowFull: true });
      if (next !== undefined) seen.push(next);
    }
    expect(seen).toEqual([16, 24]);

    const idle = new PrefetchController({ min: 8, max: 24 }, 8, clock);
    for (let i = 0; i < 8; i += 1) {
      clock.advance(1_000);
      expect(idle.observe({ size: 3, maxSize: 8, durationMs: 40 })).toBeUndefined();
    }
  });

  it('halves when a batch takes twice the usual time, never below its minimum', () => {
    const clock = clockAt();
    const controller = new PrefetchController({ min: 4, max: 64 }, 32, clock);
    for (let i = 0; i < 4; i += 1) controller.observe({ size: 2, maxSize: 8, durationMs: 50 });

    clock.advance(1_000);
    expect(controller.observe({ size: 8, maxSize: 8, durationMs: 200 })).toBe(16);
    clock.advance(1_000);
    expect(controller.observe({ size: 8, maxSize: 8, durationMs: 800 })).toBe(8);
    clock.advance(1_000);
    expect(controller.observe({ size: 8, maxSize: 8, durationMs: 4_000 })).toBe(4);
    clock.advance(1_000);
    expect(controller.observe({ size: 8, maxSize: 8, durationMs: 20_000 })).toBeUndefined();
    expect(controller.decisions.map((d) => d.reason)).toEqual([
      'latency-grew',
      'latency-grew',
      'latency-grew',
    ]);
  });

  it('leaves a second between changes and holds while batches are not full', () => {
    const clock = clockAt();
    const controller = new PrefetchController({ min: 1, max: 100 }, 10, clock);
    for (let i = 0; i < 4; i += 1) controller.observe({ size: 10, maxSize: 10, durationMs: 10 });
    expect(controller.prefetch).toBe(20);

    expect(controller.observe({ size: 10, maxSize: 10, durationMs: 10 })).toBeUndefined();
    clock.advance(1_000);
    expect(controller.observe({ size: 3, maxSize: 10, durationMs: 10 })).toBeUndefined();
    expect(controller.observe({ size: 10, maxSize: 10, durationMs: 10 })).toBe(30);
  });

  it('refuses bounds that make no sense', () => {
    expect(() => new PrefetchController({ min: 0, max: 5 }, 1, clockAt())).toThrow(RangeError);
    expect(() => new PrefetchController({ min: 6, max: 5 }, 1, clockAt())).toThrow('min 6, max 5');
  });
});
