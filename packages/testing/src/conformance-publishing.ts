import { type MessageProperties, PublishError, UnroutableError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { CREATED_AT, type FixtureAccess, job, topologyOf } from './conformance-support.ts';
import { record, takeAll } from './recording.ts';
import { waitFor } from './wait-for.ts';

/** Routing, what a message carries, and publishing that fails. */
export function describePublishing(fixture: FixtureAccess): void {
  describe('publishing', () => {
    it('routes <modelType>.<scope> to that scope’s queue alone, and nothing else anywhere', async () => {
      const { transport, admin } = fixture();
      const embeddings = topologyOf(fixture(), 'feature-extraction');
      const restricted = topologyOf(fixture(), 'feature-extraction', { scope: 'restricted' });
      const labels = topologyOf(fixture(), 'text-classification');
      for (const topology of [embeddings, restricted, labels]) await transport.declare(topology);
      const keys = [
        'feature-extraction.public',
        'feature-extraction.restricted',
        'text-classification.public',
        'feature-extraction.public.more',
        'feature-extraction',
        'feature-extraction.secret',
        'other.feature-extraction',
      ];

      for (const routingKey of keys) {
        const target = { exchange: embeddings.jobsExchange, routingKey };
        await transport.publish(target, Buffer.from(routingKey), {});
      }

      const arrived = async (queue: string, count: number) =>
        (await takeAll(transport, queue, count)).map((d) => d.routingKey);
      expect(await arrived(embeddings.queue, 1)).toEqual(['feature-extraction.public']);
      expect(await arrived(restricted.queue, 1)).toEqual(['feature-extraction.restricted']);
      expect(await arrived(labels.queue, 1)).toEqual(['text-classification.public']);
      for (const topology of [embeddings, restricted, labels]) {
        expect(await admin.messageCount(topology.queue)).toBe(0);
      }
    });

    it('delivers every property and header unchanged, epoch milliseconds as an exact integer', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const properties: MessageProperties = {
        messageId: 'job-42',
        correlationId: 'request-7',
        replyTo: 'results.tenant-a',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        priority: 5,
        expiration: '60000',
        timestamp: 1_764_860_000,
        type: 'warren.job.v1',
        appId: 'warren-tests',
        headers: {
          'x-warren-created-at': CREATED_AT,
          'x-warren-deadline': CREATED_AT + 30_000,
          'x-warren-tenant': 'tenant-a',
          'x-warren-attempt': 1,
          'x-warren-scope': 'public',
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          'x-text': 'grüße, 世界',
          'x-negative': -40_000,
          'x-ratio': 0.25,
          'x-flag': true,
          'x-nothing': null,
        },
      };
      const body = Buffer.from(JSON.stringify({ inputs: 'hello' }));
      const routingKey = 'feature-extraction.public';

      await transport.publish({ exchange: topology.jobsExchange, routingKey }, body, properties);
      const [delivery] = await takeAll(transport, topology.queue, 1);

      expect(delivery?.properties).toEqual(properties);
      expect(delivery?.properties.headers?.['x-warren-created-at']).toBe(CREATED_AT);
      expect(delivery?.body.equals(body)).toBe(true);
      expect(delivery).toMatchObject({
        exchange: topology.jobsExchange,
        routingKey,
        redelivered: false,
        queue: topology.queue,
      });
    });

    it('gives a message published without properties an empty headers object and nothing else', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture(), 'feature-extraction', { queueType: 'classic' });
      await transport.declare(topology);

      await transport.publish({ exchange: '', routingKey: topology.queue }, Buffer.alloc(0), {
        headers: { 'x-left-out': undefined },
      });
      const [delivery] = await takeAll(transport, topology.queue, 1);

      expect(delivery?.properties).toEqual({ headers: {} });
      expect(delivery?.body.length).toBe(0);
    });

    it('confirms a message no binding matches, and drops it', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);

      const target = { exchange: topology.jobsExchange, routingKey: 'nobody.listens' };
      await expect(transport.publish(target, job(1), {})).resolves.toBeUndefined();
      expect(await admin.messageCount(topology.queue)).toBe(0);
    });

    it('rejects a mandatory publish that no queue receives with an UnroutableError', async () => {
      const { transport } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const mandatory = { mandatory: true };

      const lost = { exchange: topology.jobsExchange, routingKey: 'nobody.listens' };
      const failed = transport.publish(lost, job(1), { messageId: 'lost-1' }, mandatory);
      await expect(failed).rejects.toThrow(UnroutableError);
      await expect(failed).rejects.toThrow('routing key "nobody.listens"');
      const gone = { exchange: '', routingKey: `${topology.queue}.no-such-queue` };
      await expect(
        transport.publish(gone, job(2), { messageId: 'lost-2' }, mandatory),
      ).rejects.toThrow(UnroutableError);

      const routed = { exchange: topology.jobsExchange, routingKey: 'feature-extraction.public' };
      await transport.publish(routed, job(3), { messageId: 'kept-3' }, mandatory);
      const [delivery] = await takeAll(transport, topology.queue, 1);
      expect(delivery?.properties.messageId).toBe('kept-3');
    });

    it('rejects a publish to a missing exchange with a PublishError, and the next publish works', async () => {
      const { transport, admin } = fixture();
      const topology = topologyOf(fixture());
      await transport.declare(topology);
      const missing = `${topology.jobsExchange}.missing`;

      const failed = transport.publish({ exchange: missing, routingKey: 'x' }, job(1), {});
      await expect(failed).rejects.toThrow(PublishError);
      await expect(failed).rejects.toThrow(/NOT_FOUND - no exchange/);
      await expect(failed).rejects.toThrow(`exchange "${missing}"`);

      const good = { exchange: topology.jobsExchange, routingKey: 'feature-extraction.public' };
      await expect(transport.publish(good, job(2), {})).resolves.toBeUndefined();
      await waitFor(async () => (await admin.messageCount(topology.queue)) === 1);
    });

    it('routes a default-exchange publish to a reply queue, which goes when its transport closes', async () => {
      const { transport, admin } = fixture();
      const producer = fixture().createTransport();
      await producer.connect();
      const replyQueue = await transport.declareReplyQueue();
      const replies = await record(transport, replyQueue, { prefetch: 1 });

      await producer.publish({ exchange: '', routingKey: replyQueue }, job(1), {
        correlationId: 'request-1',
      });
      const [reply] = await replies.received(1);

      expect(replyQueue).toMatch(/^amq\.gen-/);
      expect(reply).toMatchObject({
        exchange: '',
        routingKey: replyQueue,
        queue: replyQueue,
        properties: { correlationId: 'request-1' },
      });
      transport.ack(reply!);
      expect(await admin.queueExists(replyQueue)).toBe(true);
      await transport.close();
      await waitFor(async () => !(await admin.queueExists(replyQueue)));
    });
  });
}
