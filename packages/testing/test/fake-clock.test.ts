import { describe, expect, it } from 'vitest';
import { FakeClock } from '../src/index.ts';

describe('FakeClock', () => {
  it('stands still until advanced, then fires due timers in order of due time', () => {
    const clock = new FakeClock(1_000);
    const fired: string[] = [];
    clock.setTimer(() => fired.push(`late at ${clock.now()}`), 300);
    clock.setTimer(() => fired.push(`early at ${clock.now()}`), 100);
    clock.setTimer(() => fired.push(`same time, set second at ${clock.now()}`), 100);

    expect(clock.now()).toBe(1_000);
    clock.advance(299);
    expect(fired).toEqual(['early at 1100', 'same time, set second at 1100']);
    expect(clock.now()).toBe(1_299);
    clock.advance(1);

    expect(fired).toEqual(['early at 1100', 'same time, set second at 1100', 'late at 1300']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('fires a timer set by a firing one within the same advance when it falls due', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.setTimer(() => {
      fired.push(clock.now());
      clock.setTimer(() => fired.push(clock.now()), 50);
    }, 50);

    clock.advance(100);

    expect(fired).toEqual([50, 100]);
  });

  it('tells how far the earliest pending timer is, and nothing when none is left', () => {
    const clock = new FakeClock(0);
    expect(clock.msUntilNextTimer()).toBeUndefined();
    clock.setTimer(() => {}, 300);
    const early = clock.setTimer(() => {}, 100);

    clock.advance(40);
    expect(clock.msUntilNextTimer()).toBe(60);
    early.cancel();
    expect(clock.msUntilNextTimer()).toBe(260);
    clock.advance(260);

    expect(clock.msUntilNextTimer()).toBeUndefined();
  });

  it('never fires a cancelled timer, and refuses to go back in time', () => {
    const clock = new FakeClock();
    let fired = false;
    const timer = clock.setTimer(() => {
      fired = true;
    }, 10);

    timer.cancel();
    clock.advance(10);

    expect(fired).toBe(false);
    expect(() => clock.advance(-1)).toThrow(
      new RangeError('advance: expected 0 or more milliseconds, found -1'),
    );
  });
});
