/**
 * Helpers for the embedded broker's own tests. They are kept here, small, rather than taken from
 * `@warren/testing`: that package builds its harness on this one, so depending on it would make a
 * cycle.
 */
import type { Clock, Delivery, QueueTopology, Subscription, Timer, Transport } from '@warren/core';
import { topologyFor } from '@warren/core';
import { MemoryBroker, MemoryTransport } from '../src/index.ts';

/** A {@link Clock} that moves only on {@link advance}, firing due timers in order. */
export class ManualClock implements Clock {
  #now = Date.UTC(2025, 0, 1);
  #order = 0;
  readonly #timers = new Map<number, { due: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMs: number): Timer {
    const key = this.#order++;
    this.#timers.set(key, { due: this.#now + Math.max(0, delayMs), callback });
    return { cancel: () => this.#timers.delete(key) };
  }

  advance(ms: number): void {
    const until = this.#now + ms;
    for (let next = this.#next(until); next !== undefined; next = this.#next(until)) {
      const timer = this.#timers.get(next)!;
      this.#timers.delete(next);
      this.#now = timer.due;
      timer.callback();
    }
    this.#now = until;
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** The key of the earliest timer due by `until`; keys grow with the order timers were set. */
  #next(until: number): number | undefined {
    let best: number | undefined;
    for (const [key, { due }] of this.#timers) {
      if (due > until) continue;
      if (best === undefined || due < this.#timers.get(best)!.due) best = key;
    }
    return best;
  }
}

/** A broker on a manual clock, and a connected transport to it. */
export async function fakeTimeBroker(): Promise<{
  clock: ManualClock;
  broker: MemoryBroker;
  transport: MemoryTransport;
}> {
  const clock = new ManualClock();
  const broker = new MemoryBroker({ clock });
  const transport = new MemoryTransport(broker);
  await transport.connect();
  return { clock, broker, transport };
}

/** A topology with one delay queue of `delayMs`. */
export function topologyWithDelay(
  delayMs: number,
  options: { queueType?: 'quorum' | 'classic'; deliveryLimit?: number } = {},
): QueueTopology {
  return topologyFor('feature-extraction', {
    prefix: 'test',
    retry: {
      maxAttempts: 2,
      initialDelayMs: delayMs,
      multiplier: 1,
      maxDelayMs: delayMs,
      jitter: 0,
    },
    ...options,
  });
}

/** Lets the broker's pending turns (deliveries, dead letters) run. */
export function turns(count = 3): Promise<void> {
  let chain = Promise.resolve();
  for (let i = 0; i < count; i += 1) {
    chain = chain.then(() => new Promise((resolve) => setImmediate(resolve)));
  }
  return chain;
}

/** The messageIds of deliveries, in order. */
export function ids(deliveries: Delivery[]): (string | undefined)[] {
  return deliveries.map((d) => d.properties.messageId);
}

/** Resolves after `ms` milliseconds of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves once `condition` holds, checking every 5 ms; rejects after 5 s. */
export async function waitFor(condition: () => boolean, what = 'condition'): Promise<void> {
  const giveUpAt = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > giveUpAt) throw new Error(`${what} not met within 5000 ms`);
    await sleep(5);
  }
}

/** What {@link record} keeps of a subscription. */
export interface Recording {
  readonly deliveries: Delivery[];
  readonly cancelReasons: string[];
  readonly subscription: Subscription;
  /** Resolves with the deliveries once at least `count` have arrived. */
  received(count: number): Promise<Delivery[]>;
}

/** Consumes `queue`, keeping every delivery and cancel reason; settling is left to the test. */
export async function record(
  transport: Transport,
  queue: string,
  options: { prefetch: number; onDelivery?: (delivery: Delivery, index: number) => void },
): Promise<Recording> {
  const deliveries: Delivery[] = [];
  const cancelReasons: string[] = [];
  const subscription = await transport.consume(
    queue,
    { prefetch: options.prefetch, onCancel: (reason) => cancelReasons.push(reason) },
    (delivery) => {
      deliveries.push(delivery);
      options.onDelivery?.(delivery, deliveries.length - 1);
    },
  );
  const received = async (count: number) => {
    await waitFor(() => deliveries.length >= count, `${count} deliveries from ${queue}`);
    return deliveries;
  };
  return { deliveries, cancelReasons, subscription, received };
}
