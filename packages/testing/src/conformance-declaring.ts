import { IllegalStateError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { type FixtureAccess, job, topologyOf } from './conformance-support.ts';
import { waitFor } from './wait-for.ts';

/** Declaring topologies, and what a transport allows before connect and after close. */
export function describeDeclaring(fixture: FixtureAccess): void {
  describe('declaring and lifecycle', () => {
    it('declares a topology twice without complaint, with every queue it names', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture());

      await transport.declare(topology);
      await transport.declare(topology);

      const queues = [
        topology.queue,
        topology.deadLetterQueue,
        ...topology.delayQueues.map((q) => q.name),
      ];
      for (const queue of queues) expect(await admin.queueExists(queue)).toBe(true);
    });

    it('refuses a queue that exists with other arguments, naming it, and keeps publishing', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture(), 'text-classification');
      await admin.declareQueue(topology.queue, { 'x-queue-type': 'classic' });

      const declared = transport.declare(topology);
      await expect(declared).rejects.toThrow(`queue "${topology.queue}" already exists`);
      await expect(declared).rejects.toThrow(/x-queue-type/);

      await transport.publish({ exchange: '', routingKey: topology.queue }, job(1), {});
      await waitFor(async () => (await admin.messageCount(topology.queue)) === 1);
    });

    it('rejects consuming a queue that does not exist with an error naming it', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());

      await expect(transport.consume(topology.queue, { prefetch: 1 }, () => {})).rejects.toThrow(
        `consuming from queue "${topology.queue}" failed`,
      );
      await transport.declare(topology);
      await expect(
        transport.consume(topology.queue, { prefetch: 1 }, () => {}),
      ).resolves.toBeDefined();
    });

    it('rejects a prefetch below 1, or not an integer, with a RangeError saying expected and found', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);

      const consume = (prefetch: number) =>
        transport.consume(topology.queue, { prefetch }, () => {});
      await expect(consume(0)).rejects.toThrow(
        new RangeError('prefetch: expected an integer from 1 to 65535, found 0'),
      );
      await expect(consume(1.5)).rejects.toThrow(RangeError);
    });

    it('rejects every operation before connect and after close with an IllegalStateError', async () => {
      const transport = fixture().createTransport();
      const topology = topologyOf(fixture());
      const target = { exchange: '', routingKey: topology.queue };

      await expect(transport.publish(target, job(1), {})).rejects.toThrow(IllegalStateError);
      await expect(transport.declare(topology)).rejects.toThrow(/call connect\(\) first/);
      await transport.connect();
      await Promise.all([transport.close(), transport.close()]);
      await expect(transport.publish(target, job(1), {})).rejects.toThrow(/found it closed/);
      await expect(transport.connect()).rejects.toThrow(IllegalStateError);
      await expect(transport.declareReplyQueue()).rejects.toThrow(IllegalStateError);
      await expect(transport.consume(topology.queue, { prefetch: 1 }, () => {})).rejects.toThrow(
        IllegalStateError,
      );
    });
  });
}
