import type { Delivery, Subscription, Transport } from '@warren/core';
import { waitFor } from './wait-for.ts';

/** A subscription that keeps what it is given. */
export interface Recording {
  readonly deliveries: Delivery[];
  readonly cancelReasons: string[];
  readonly subscription: Subscription;
  /** Resolves with the deliveries once at least `count` have arrived; rejects after 5 s. */
  received(count: number): Promise<Delivery[]>;
}

export interface RecordOptions {
  prefetch: number;
  /** Called with each delivery as it arrives, and its index; settle it here or later. */
  onDelivery?: (delivery: Delivery, index: number) => void;
}

/** Consumes `queue` and records every delivery and cancellation. */
export async function record(
  transport: Transport,
  queue: string,
  options: RecordOptions,
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
  return {
    deliveries,
    cancelReasons,
    subscription,
    received: async (count) => {
      await waitFor(() => deliveries.length >= count, 5_000, `${count} deliveries from ${queue}`);
      return deliveries;
    },
  };
}

/** Consumes `queue`, acking everything, until `count` deliveries arrived; then cancels. */
export async function takeAll(
  transport: Transport,
  queue: string,
  count: number,
): Promise<Delivery[]> {
  const recording = await record(transport, queue, {
    prefetch: Math.max(1, count),
    onDelivery: (delivery) => transport.ack(delivery),
  });
  const deliveries = await recording.received(count);
  await recording.subscription.cancel();
  return deliveries;
}
