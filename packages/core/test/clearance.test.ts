import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  DEFAULT_CLEARANCE,
  type Delivery,
  defineHandler,
  encodeJob,
  ForbiddenError,
  forbiddenFor,
  HEADERS,
  type JobEnvelope,
  type MessageProperties,
  narrowClearance,
  PluginError,
  producerOf,
  topologyFor,
} from '../src/index.ts';
import { giveBack } from '../src/job-settle.ts';
import type { JobDeps } from '../src/job-steps.ts';
import { relayedProperties } from '../src/relay.ts';

const envelope = (scope: string, tenant = 'acme'): JobEnvelope => ({
  messageId: 'm1',
  tenant,
  scope,
  priority: 0,
  attempt: 1,
  modelType: 'echo',
  contentType: 'application/json',
  trace: {},
});

describe('clearance', () => {
  const clearance = {
    scopes: ['public', 'restricted'],
    tenants: ['acme'],
    producers: { restricted: ['svc-a'] },
  };

  it('admits a job inside the clearance', () => {
    expect(forbiddenFor(envelope('public'), undefined, clearance)).toBeUndefined();
    expect(forbiddenFor(envelope('restricted'), 'svc-a', clearance)).toBeUndefined();
  });

  it.each([
    ['a scope not cleared', envelope('secret'), 'svc-a', 'scope-not-cleared'],
    ['a tenant not cleared', envelope('public', 'globex'), undefined, 'tenant-not-cleared'],
    ['a producer not allowed', envelope('restricted'), 'svc-b', 'producer-not-allowed'],
    [
      'no user_id where producers are named',
      envelope('restricted'),
      undefined,
      'producer-not-allowed',
    ],
  ])('refuses %s with its own reason', (_, job, userId, reason) => {
    const error = forbiddenFor(job, userId, clearance);
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error).toMatchObject({ reason, code: 'WARREN_FORBIDDEN', fate: 'dead-letter' });
  });

  it('serves public alone, any tenant, by default', () => {
    expect(
      forbiddenFor(envelope('public', 'anyone'), undefined, DEFAULT_CLEARANCE),
    ).toBeUndefined();
    expect(forbiddenFor(envelope('restricted'), undefined, DEFAULT_CLEARANCE)?.reason).toBe(
      'scope-not-cleared',
    );
  });

  it('lets a config narrow a handler’s clearance but never widen it', () => {
    expect(narrowClearance(clearance, { scopes: ['restricted'] })).toMatchObject({
      scopes: ['restricted'],
      tenants: ['acme'],
    });
    expect(narrowClearance(clearance, { scopes: ['public', 'secret'] })).toMatch(
      /^scopes: "secret" is not among the scopes the handler declares/,
    );
    expect(narrowClearance(clearance, { tenants: ['globex'] })).toMatch(
      /^tenants: "globex" is not among the tenants/,
    );
    // Producers: narrowed from any account to some, or within the handler's own list only.
    expect(
      narrowClearance({ scopes: ['public'] }, { producers: { public: ['svc-a'] } }),
    ).toMatchObject({ producers: { public: ['svc-a'] } });
    expect(narrowClearance(clearance, { producers: { restricted: ['svc-a', 'anyone'] } })).toMatch(
      /^producers\.restricted: "anyone" is not among the producers the handler allows/,
    );
    // A misspelt scope would leave the real one unchecked: refused.
    expect(narrowClearance(clearance, { producers: { restrcted: ['svc-a'] } })).toMatch(
      /^producers\.restrcted: expected one of the cleared scopes/,
    );
    // A handler that serves any tenant may be narrowed to some.
    expect(narrowClearance({ scopes: ['public'] }, { tenants: ['acme'] })).toMatchObject({
      tenants: ['acme'],
    });
  });

  it('refuses a handler whose clearance is malformed, at definition', () => {
    const spec = { name: 'h', modelType: 'echo', input: z.unknown(), handle: async () => null };
    expect(() => defineHandler({ ...spec, clearance: { scopes: [] } })).toThrow(
      new PluginError('handler h: clearance.scopes: expected at least one scope'),
    );
    expect(() => defineHandler({ ...spec, clearance: { scopes: ['a.b'] } })).toThrow(
      /clearance\.scopes: expected lower-case letters/,
    );
  });
});

describe('a scope’s topology', () => {
  it('keeps the public queue’s name and binds each scope to one queue', () => {
    const open = topologyFor('echo', { prefix: 'w' });
    const closed = topologyFor('echo', { prefix: 'w', scope: 'restricted' });
    expect(open).toMatchObject({
      queue: 'w.jobs.echo',
      bindings: ['echo.public'],
      deadLetterQueue: 'w.dead-letter.echo',
    });
    expect(closed).toMatchObject({
      queue: 'w.jobs.echo:restricted',
      bindings: ['echo.restricted'],
      deadLetterQueue: 'w.dead-letter.echo:restricted',
      deadLetterRoutingKey: 'echo:restricted',
    });
    expect(
      closed.delayQueues.every(({ name }) => name.startsWith('w.delay.echo:restricted.')),
    ).toBe(true);
  });

  it('refuses a scope that is not one routing-key word, at both ends', () => {
    expect(() => topologyFor('echo', { scope: 'a.#' })).toThrow(ConfigError);
    expect(() => encodeJob({ modelType: 'echo', tenant: 't', input: 1, scope: 'x.y' })).toThrow(
      /scope: expected lower-case letters/,
    );
  });
});

describe('relayed jobs', () => {
  const delivery = (userId: string | undefined, producer?: string): Delivery => ({
    body: Buffer.from('{}'),
    properties: {
      ...(userId === undefined ? {} : { userId }),
      headers: producer === undefined ? {} : { [HEADERS.producer]: producer },
    },
    exchange: '',
    routingKey: 'q',
    redelivered: false,
    deliveryTag: 1,
    queue: 'q',
  });
  const relay = { user: 'worker', trusted: ['worker'] };

  it('believes x-warren-producer only from a trusted relay account', () => {
    expect(producerOf(delivery('worker', 'svc-a').properties, relay)).toBe('svc-a');
    expect(producerOf(delivery('svc-b', 'svc-a').properties, relay)).toBe('svc-b');
    expect(producerOf(delivery(undefined, 'svc-a').properties, relay)).toBeUndefined();
  });

  it('republishes as its own account, keeping the original producer', () => {
    const first = delivery('svc-a', 'forged');
    const republished = relayedProperties(first, first.properties, relay);
    expect(republished.userId).toBe('worker');
    expect(republished.headers?.[HEADERS.producer]).toBe('svc-a');
    // A retry whose verification failed says so; the mark never carries over to a later one.
    const unverified = relayedProperties(first, first.properties, relay, { unverified: true });
    expect(unverified.headers?.[HEADERS.unverified]).toBe(true);
    const later = relayedProperties(
      { ...first, properties: { ...unverified, userId: 'worker' } },
      unverified,
      relay,
    );
    expect(later.headers?.[HEADERS.unverified]).toBeUndefined();
    // Without an account of its own, nothing claims one.
    const anonymous = relayedProperties(first, first.properties, undefined);
    expect(anonymous.userId).toBeUndefined();
  });
});

describe('giving back a delivery a failed consumer never started', () => {
  const published: MessageProperties[] = [];
  const transport = {
    account: 'worker',
    publish: async (_target: unknown, _body: Buffer, properties: MessageProperties) => {
      published.push(properties);
    },
    ack: () => {},
    nack: () => {},
  };
  const deps = {
    transport,
    topology: { queue: 'q' },
    relay: { trusted: ['worker'] },
    logger: { warn: () => {} },
  } as unknown as JobDeps;
  const delivery = (properties: MessageProperties): Delivery => ({
    body: Buffer.from('{}'),
    properties,
    exchange: '',
    routingKey: 'q',
    redelivered: false,
    deliveryTag: 1,
    queue: 'q',
  });

  it('marks a producer’s job unverified, so its next worker does not take the relay as a voucher', async () => {
    giveBack(delivery({ userId: 'svc-a', headers: {} }), deps);
    await waitForCount(published, 1);
    expect(published[0]).toMatchObject({
      userId: 'worker',
      headers: { [HEADERS.producer]: 'svc-a', [HEADERS.unverified]: true },
    });
  });

  it('keeps a relay’s retry as it was: vouched for, or still marked', async () => {
    giveBack(delivery({ userId: 'worker', headers: { [HEADERS.producer]: 'svc-a' } }), deps);
    giveBack(
      delivery({
        userId: 'worker',
        headers: { [HEADERS.unverified]: true, [HEADERS.producer]: 'svc-a' },
      }),
      deps,
    );
    await waitForCount(published, 3);
    expect(published[1]!.headers?.[HEADERS.unverified]).toBeUndefined();
    expect(published[2]!.headers?.[HEADERS.unverified]).toBe(true);
  });
});

async function waitForCount(list: unknown[], count: number): Promise<void> {
  while (list.length < count) await new Promise((resolve) => setTimeout(resolve, 1));
}
