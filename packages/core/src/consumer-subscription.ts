import { fromPromise } from 'xstate';
import type { ConsumerEvent } from './consumer-machine.ts';
import { giveBack } from './job-settle.ts';
import type { JobDeps } from './job-steps.ts';
import type { Delivery, Subscription } from './transport.ts';

// The consumer machine's subscription: the promise actors that start and stop it, and how its
// deliveries reach the machine.

export interface SubscribeInput {
  jobDeps: JobDeps;
  self: { send(event: ConsumerEvent): void; getSnapshot(): { status: string } };
}

/**
 * Connects, declares the model type's topology and subscribes with prefetch set. Each
 * delivery, and a broker-side cancel, comes back to the machine as an event.
 */
export const subscribe = fromPromise<Subscription, SubscribeInput>(async ({ input }) => {
  const { transport, topology } = input.jobDeps;
  await transport.connect();
  await transport.declare(topology);
  return transport.consume(
    topology.queue,
    {
      prefetch: 1,
      onCancel: (reason) => input.self.send({ type: 'warren.consumer.cancelled', reason }),
    },
    inOneEvent((deliveries: Delivery[]) => {
      if (input.self.getSnapshot().status === 'active') {
        input.self.send({ type: 'warren.deliveries.received', deliveries });
        return;
      }
      // The consumer has failed and its subscription is being cancelled: give them back.
      for (const delivery of deliveries) giveBack(delivery, input.jobDeps);
    }),
  );
});

export const unsubscribe = fromPromise<void, { subscription: Subscription | undefined }>(
  ({ input }) =>
    input.subscription === undefined ? Promise.resolve() : input.subscription.cancel(),
);

/**
 * Gathers what arrives until `defer` calls back and passes it on as one list: a consumer takes
 * one event per socket read or per burst of finished jobs, not one per message. Deliveries are
 * gathered until the microtasks of their socket read have run (`queueMicrotask`, the default), so
 * their jobs start in the same turn; finished jobs until the turn's I/O is done (`setImmediate`),
 * because each job finishes in a microtask of its own and would otherwise make an event alone.
 * An item for which `urgent` holds goes at once, with what was gathered before it.
 */
export function inOneEvent<T>(
  send: (items: T[]) => void,
  defer: (flush: () => void) => void = queueMicrotask,
  urgent?: (item: T) => boolean,
): (item: T) => void {
  let gathered: T[] | undefined;
  const flush = () => {
    const items = gathered;
    gathered = undefined;
    if (items !== undefined) send(items);
  };
  return (item) => {
    const now = urgent?.(item) === true;
    if (gathered !== undefined) gathered.push(item);
    else {
      gathered = [item];
      if (!now) defer(flush);
    }
    if (now) flush();
  };
}
