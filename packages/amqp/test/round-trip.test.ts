import {
  type Delivery,
  JobPublisher,
  JobUnroutableError,
  type MessageProperties,
} from '@warren/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrokerFixture, RecordingLogger, waitFor } from './support.ts';

const broker = new BrokerFixture();
beforeEach(() => broker.start());
afterEach(() => broker.cleanUp());
afterAll(() => broker.stop());

/** Epoch milliseconds: too big for an AMQP int, so amqplib sends it as a signed 64-bit long. */
const CREATED_AT = 1_764_860_000_000;

describe('publish and consume', () => {
  it('keeps every property and header, including epoch milliseconds as an exact integer', async () => {
    const transport = await broker.transport();
    const topology = broker.topology('feature-extraction');
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
    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      deliveries.push(delivery);
      transport.ack(delivery);
    });
    await waitFor(() => deliveries.length === 1);

    const [delivery] = deliveries;
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

  it('gives a message without properties an empty headers object and nothing else', async () => {
    const transport = await broker.transport();
    const topology = broker.topology('feature-extraction', 'classic');
    await transport.declare(topology);

    await transport.publish({ exchange: '', routingKey: topology.queue }, Buffer.alloc(0), {});
    const deliveries: Delivery[] = [];
    await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      deliveries.push(delivery);
      transport.ack(delivery);
    });
    await waitFor(() => deliveries.length === 1);

    expect(deliveries[0]?.properties).toEqual({ headers: {} });
    expect(deliveries[0]?.body.length).toBe(0);
  });

  it('leaves out headers that are tables or arrays, such as x-death, and logs their names at debug', async () => {
    const logger = new RecordingLogger();
    const transport = await broker.transport({ logger });
    const topology = broker.topology('feature-extraction');
    await transport.declare(topology);
    const headers = { 'x-warren-tenant': 'tenant-a', 'x-warren-created-at': CREATED_AT };

    await transport.publish(
      { exchange: topology.jobsExchange, routingKey: 'feature-extraction.public' },
      Buffer.from('{}'),
      { messageId: 'job-dead', headers },
    );
    await transport.consume(topology.queue, { prefetch: 1 }, (delivery) => {
      transport.nack(delivery, { requeue: false });
    });
    const dead: Delivery[] = [];
    await transport.consume(topology.deadLetterQueue, { prefetch: 1 }, (delivery) => {
      dead.push(delivery);
      transport.ack(delivery);
    });
    await waitFor(() => dead.length === 1);

    const received = dead[0]?.properties.headers ?? {};
    expect(received).toMatchObject({ ...headers, 'x-first-death-reason': 'rejected' });
    expect(received).not.toHaveProperty('x-death');
    const note = logger.entries.find((e) => e.message === 'headers without a Warren form left out');
    expect(note?.fields).toMatchObject({ queue: topology.deadLetterQueue, headers: ['x-death'] });
  });

  it('refuses a job no queue is bound for, unless the publisher lets it go unseen', async () => {
    const transport = await broker.transport();
    const topology = broker.topology('feature-extraction');
    await transport.declare(topology);
    const prefix = topology.queue.slice(0, topology.queue.indexOf('.jobs.'));
    const publisher = new JobPublisher(transport, { prefix });
    const job = { tenant: 'acme', input: { text: 'hello' } };

    await expect(
      publisher.publish({ ...job, modelType: 'feature-extraction' }),
    ).resolves.toMatchObject({
      routingKey: 'feature-extraction.public',
    });
    const misspelt = publisher.publish({ ...job, modelType: 'feature-extractoin' });
    await expect(misspelt).rejects.toBeInstanceOf(JobUnroutableError);
    await expect(misspelt).rejects.toMatchObject({ code: 'WARREN_JOB_UNROUTABLE' });
    await expect(misspelt).rejects.toThrow(
      'no queue is bound for routing key feature-extractoin.public',
    );
    const quiet = new JobPublisher(transport, { prefix }, { mandatory: false });
    await expect(quiet.publish({ ...job, modelType: 'feature-extractoin' })).resolves.toBeDefined();
    expect((await broker.admin.checkQueue(topology.queue)).messageCount).toBe(1);
  });
});
