import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/clock.ts';
import {
  type ChildSpec,
  type SupervisedActor,
  Supervisor,
  type SupervisorEvent,
} from '../src/supervisor.ts';

/** A clock whose timers fire only when a test advances it. */
function manualClock() {
  let now = 0;
  let timers: Array<{ due: number; callback: () => void }> = [];
  const clock: Clock & { advance(ms: number): Promise<void> } = {
    now: () => now,
    setTimer(callback, delayMs) {
      const timer = { due: now + delayMs, callback };
      timers.push(timer);
      return {
        cancel: () => {
          timers = timers.filter((t) => t !== timer);
        },
      };
    },
    async advance(ms) {
      const until = now + ms;
      await settle();
      for (;;) {
        const next = timers.filter((t) => t.due <= until).sort((a, b) => a.due - b.due)[0];
        if (next === undefined) break;
        timers = timers.filter((t) => t !== next);
        now = next.due;
        next.callback();
        await settle();
      }
      now = until;
      await settle();
    },
  };
  return clock;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
}

/** An actor a test crashes or stops by hand. */
class TestActor implements SupervisedActor {
  readonly exited: Promise<{ state: 'stopped' | 'failed'; error?: unknown }>;
  stopped = false;
  #end!: (exit: { state: 'stopped' | 'failed'; error?: unknown }) => void;

  constructor() {
    this.exited = new Promise((resolve) => {
      this.#end = resolve;
    });
  }

  crash(message: string): void {
    this.#end({ state: 'failed', error: new Error(message) });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.#end({ state: 'stopped' });
  }
}

/** A child whose every start makes a TestActor, or fails while `failStarts` is above 0. */
function child(id: string) {
  const actors: TestActor[] = [];
  const spec = {
    id,
    failStarts: 0,
    actors,
    start: async () => {
      if (spec.failStarts > 0) {
        spec.failStarts -= 1;
        throw new Error(`${id} cannot start`);
      }
      const actor = new TestActor();
      actors.push(actor);
      return actor;
    },
  } satisfies ChildSpec<TestActor> & Record<string, unknown>;
  return spec;
}

describe('the supervisor', () => {
  it('restarts a crashed child after growing delays while its sibling runs on untouched', async () => {
    const clock = manualClock();
    const [flaky, steady] = [child('flaky'), child('steady')];
    const events: SupervisorEvent[] = [];
    const supervisor = new Supervisor([flaky, steady], {
      clock,
      backoff: { initialDelayMs: 100, multiplier: 3, maxDelayMs: 500 },
      budget: { maxRestarts: 10, withinMs: 60_000 },
    });
    supervisor.onEvent((event) => events.push(event));
    await supervisor.start();

    for (const expectedDelay of [100, 300, 500]) {
      flaky.actors.at(-1)!.crash('boom');
      await settle();
      expect(supervisor.health()[0]).toMatchObject({ state: 'restarting', lastError: 'boom' });
      await clock.advance(expectedDelay - 1);
      expect(supervisor.health()[0]!.state).toBe('restarting');
      await clock.advance(1);
      expect(supervisor.health()[0]!.state).toBe('running');
    }

    expect(flaky.actors).toHaveLength(4);
    expect(steady.actors).toHaveLength(1);
    expect(steady.actors[0]!.stopped).toBe(false);
    expect(supervisor.health()).toEqual([
      { id: 'flaky', state: 'running', restarts: 3, lastError: 'boom' },
      { id: 'steady', state: 'running', restarts: 0 },
    ]);
    expect(events.map((e) => [e.type, 'restartInMs' in e ? e.restartInMs : undefined])).toEqual([
      ['crashed', 100],
      ['restarted', undefined],
      ['crashed', 300],
      ['restarted', undefined],
      ['crashed', 500],
      ['restarted', undefined],
    ]);
    await supervisor.stop();
    expect(steady.actors[0]!.stopped).toBe(true);
  });

  it('escalates on the crash after its budget is spent, and stops every child', async () => {
    const clock = manualClock();
    const [flaky, steady] = [child('flaky'), child('steady')];
    const supervisor = new Supervisor([flaky, steady], {
      clock,
      backoff: { initialDelayMs: 10, multiplier: 1, maxDelayMs: 10 },
      budget: { maxRestarts: 2, withinMs: 1_000 },
    });
    await supervisor.start();

    for (let restart = 1; restart <= 2; restart += 1) {
      flaky.actors.at(-1)!.crash(`crash ${restart}`);
      await clock.advance(10);
    }
    expect(flaky.actors).toHaveLength(3);
    flaky.actors.at(-1)!.crash('crash 3');
    const exit = await supervisor.exited;

    expect(exit.state).toBe('escalated');
    expect((exit.error as Error).message).toBe('crash 3');
    expect(steady.actors[0]!.stopped).toBe(true);
    expect(supervisor.health().map((h) => h.state)).toEqual(['stopped', 'stopped']);
  });

  it('forgets crashes older than the budget window', async () => {
    const clock = manualClock();
    const flaky = child('flaky');
    const supervisor = new Supervisor([flaky], {
      clock,
      backoff: { initialDelayMs: 10, multiplier: 1, maxDelayMs: 10 },
      budget: { maxRestarts: 1, withinMs: 1_000 },
    });
    await supervisor.start();

    for (let crash = 1; crash <= 4; crash += 1) {
      flaky.actors.at(-1)!.crash(`crash ${crash}`);
      await clock.advance(1_001);
    }
    expect(flaky.actors).toHaveLength(5);
    expect(supervisor.health()[0]).toMatchObject({ state: 'running', restarts: 4 });
    await supervisor.stop();
    expect(await supervisor.exited).toEqual({ state: 'stopped' });
  });

  it('retries a child whose start fails, and resolves start once it runs', async () => {
    const clock = manualClock();
    const loading = child('loading');
    loading.failStarts = 2;
    const supervisor = new Supervisor([loading], {
      clock,
      backoff: { initialDelayMs: 50, multiplier: 2, maxDelayMs: 1_000 },
    });
    let started = false;
    const starting = supervisor.start().then(() => {
      started = true;
    });
    await settle();
    expect(supervisor.health()[0]).toMatchObject({ state: 'restarting', restarts: 1 });
    await clock.advance(50);
    expect(started).toBe(false);
    await clock.advance(100);
    await starting;
    expect(loading.actors).toHaveLength(1);
    expect(supervisor.health()[0]).toMatchObject({ state: 'running', restarts: 2 });
    await supervisor.stop();
  });

  it('rejects start with the last error when a child never starts within the budget', async () => {
    const clock = manualClock();
    const broken = child('broken');
    broken.failStarts = Number.POSITIVE_INFINITY;
    const steady = child('steady');
    const supervisor = new Supervisor([broken, steady], {
      clock,
      backoff: { initialDelayMs: 10, multiplier: 1, maxDelayMs: 10 },
      budget: { maxRestarts: 3, withinMs: 60_000 },
    });
    const starting = supervisor.start();
    starting.catch(() => {});
    await clock.advance(100);

    await expect(starting).rejects.toThrow('broken cannot start');
    expect((await supervisor.exited).state).toBe('escalated');
    expect(steady.actors[0]!.stopped).toBe(true);
  });

  it('cancels a pending restart when stopped, and escalate stops everything with its reason', async () => {
    const clock = manualClock();
    const flaky = child('flaky');
    const supervisor = new Supervisor([flaky], { clock, backoff: { initialDelayMs: 100 } });
    await supervisor.start();
    flaky.actors[0]!.crash('boom');
    await settle();
    expect(await supervisor.stop()).toEqual({ state: 'stopped' });
    await clock.advance(1_000);
    expect(flaky.actors).toHaveLength(1);

    const other = child('other');
    const second = new Supervisor([other], { clock });
    await second.start();
    const reason = new Error('the broker connection is gone for good');
    expect(await second.escalate(reason)).toEqual({ state: 'escalated', error: reason });
    expect(other.actors[0]!.stopped).toBe(true);
  });

  it('treats a child that stops by itself as crashed', async () => {
    const clock = manualClock();
    const quitter = child('quitter');
    const supervisor = new Supervisor([quitter], { clock, backoff: { initialDelayMs: 5 } });
    await supervisor.start();
    await quitter.actors[0]!.stop();
    await settle();
    expect(supervisor.health()[0]).toMatchObject({
      state: 'restarting',
      lastError: 'quitter stopped by itself',
    });
    await clock.advance(5);
    expect(quitter.actors).toHaveLength(2);
    await supervisor.stop();
  });

  it('refuses a policy that cannot work, naming the field', () => {
    expect(() => new Supervisor([child('a')], { budget: { maxRestarts: -1 } })).toThrow(
      'budget.maxRestarts: expected an integer of at least 0, found -1',
    );
    expect(() => new Supervisor([child('a'), child('a')])).toThrow('found a twice');
  });
});
