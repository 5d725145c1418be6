import { randomUUID } from 'node:crypto';
import { HEADERS, JobPublisher, type TopologyOptions, topologyFor } from '@warren/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BrokerFixture } from '../../amqp/test/support.ts';
import { IdentityRouter } from '../src/index.ts';
import {
  AUDIENCE,
  ISSUER,
  type IssuerKey,
  JwksServer,
  newKey,
  signToken,
} from './fixtures/identity/jwks-server.ts';

const broker = new BrokerFixture();
let key: IssuerKey;
let jwks: JwksServer;

beforeAll(async () => {
  key = await newKey('ed-1', 'EdDSA');
  jwks = await JwksServer.start([key.jwk]);
});
beforeEach(() => broker.start());
afterEach(() => broker.cleanUp());
afterAll(async () => {
  await broker.stop();
  await jwks.close();
});

/** Declares a topology under a prefix of its own, deleted after the test. */
async function declared(modelType: string, options: TopologyOptions) {
  const topology = topologyFor(modelType, options);
  broker.forget({
    queues: [topology.queue, topology.deadLetterQueue, ...topology.delayQueues.map((q) => q.name)],
    exchanges: [topology.jobsExchange, topology.deadLetterExchange, topology.resultsExchange],
  });
  const transport = await broker.transport();
  await transport.declare(topology);
  return { topology, transport };
}

describe('publishing a job routed by identity through RabbitMQ', () => {
  it('lands the job in its model type queue with the tenant and scope the rules gave', async () => {
    const prefix = `test-${randomUUID()}`;
    const { topology, transport } = await declared('feature-extraction', {
      prefix,
      queueType: 'classic',
      scope: 'restricted',
    });
    const router = IdentityRouter.fromConfig({
      oidc: { issuer: ISSUER, audience: AUDIENCE, jwksUrl: jwks.url },
      rules: [
        {
          kind: 'oidc',
          claims: { groups: 'ml' },
          tenant: { claim: 'org_id' },
          scope: 'restricted',
          priority: 4,
        },
      ],
    });
    const publisher = new JobPublisher(transport, { prefix });
    const token = await signToken(key, {
      groups: ['ml'],
      org_id: 'acme',
      exp: Math.floor(Date.now() / 1000) + 300,
    });

    const identity = await router.fromBearer(`Bearer ${token}`);
    const published = await publisher.publish(
      router.jobSpec(identity, 'feature-extraction', { input: { text: 'hello' } }),
    );

    expect(published.routingKey).toBe('feature-extraction.restricted');
    expect(published.routingKey).toBe(router.route(identity, 'feature-extraction').routingKey);
    const message = await broker.admin.get(topology.queue, { noAck: true });
    expect(message).not.toBe(false);
    if (message === false) return;
    expect(message.fields.routingKey).toBe('feature-extraction.restricted');
    expect(message.properties.messageId).toBe(published.messageId);
    expect(message.properties.priority).toBe(4);
    expect(message.properties.headers).toMatchObject({
      [HEADERS.tenant]: 'acme',
      [HEADERS.scope]: 'restricted',
      [HEADERS.modelType]: 'feature-extraction',
    });
    expect(JSON.parse(message.content.toString())).toEqual({ text: 'hello' });
  });
});
