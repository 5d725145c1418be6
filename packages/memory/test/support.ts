import { type Delivery, type QueueTopology, topologyFor } from '@warren/core';
import { FakeClock } from '@warren/testing';
import { MemoryBroker, MemoryTransport } from '../src/index.ts';

/** A broker on a fake clock, and a connected transport to it. */
export async function fakeTimeBroker(): Promise<{
  clock: FakeClock;
  broker: MemoryBroker;
  transport: MemoryTransport;
}> {
  const clock = new FakeClock();
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
