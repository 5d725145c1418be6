import { topologyFor } from '@warren/core';
import { describe, expect, it } from 'vitest';
import {
  type AccountPermissions,
  type PermissionsDeclarationInput,
  type PermissionsPlan,
  parsePermissionsDeclaration,
  planPermissions,
} from '../src/index.ts';

/** Two teams; team A's model type has a dot in it, to catch an unescaped one. */
const DECLARATION: PermissionsDeclarationInput = {
  vhost: '/',
  teams: [
    {
      name: 'team-a',
      workers: [{ user: 'a-worker', modelTypes: ['a.b'], scopes: ['public', 'restricted'] }],
      producers: [
        { user: 'a-api', modelTypes: ['a.b'], scopes: ['public'], replyQueues: true },
        { user: 'a-batch', modelTypes: ['a.b'], scopes: ['restricted'] },
      ],
      resultReaders: [{ user: 'a-indexer', modelTypes: ['a.b'], queues: ['a.results'] }],
    },
    {
      name: 'team-b',
      workers: [{ user: 'b-worker', modelTypes: ['embed'], scopes: ['public'] }],
      producers: [{ user: 'b-api', modelTypes: ['embed'], scopes: ['public'] }],
    },
  ],
};

function plan(declaration: PermissionsDeclarationInput = DECLARATION): PermissionsPlan {
  return planPermissions(parsePermissionsDeclaration(declaration));
}

function account(planned: PermissionsPlan, user: string): AccountPermissions {
  const found = planned.accounts.find((a) => a.user === user);
  if (found === undefined) throw new Error(`no account ${user} in the plan`);
  return found;
}

/** A RabbitMQ pattern as JavaScript runs it; the constructs used mean the same in PCRE. */
const matches = (pattern: string, name: string) => new RegExp(pattern).test(name);

function topic(permissions: AccountPermissions, exchange: string) {
  const found = permissions.topic.find((t) => t.exchange === exchange);
  if (found === undefined) throw new Error(`no topic permission on ${exchange}`);
  return found;
}

function allNames(modelType: string, scope: string) {
  const t = topologyFor(modelType, { scope });
  return {
    topology: t,
    queues: [t.queue, t.deadLetterQueue, ...t.delayQueues.map((q) => q.name)],
    delayQueues: t.delayQueues.map((q) => q.name),
  };
}

describe('the patterns', () => {
  const planned = plan();
  const patterns = planned.accounts.flatMap((a) => [
    a.configure,
    a.write,
    a.read,
    ...a.topic.flatMap((t) => [t.write, t.read]),
  ]);

  it('are all anchored at both ends', () => {
    expect(patterns.length).toBeGreaterThan(20);
    for (const pattern of patterns) expect(pattern).toMatch(/^\^.*\$$/);
  });

  it('escape every dot: model type a.b matches neither aXb nor a longer or shorter name', () => {
    const worker = account(planned, 'a-worker');
    const queue = topologyFor('a.b').queue;

    expect(queue).toBe('warren.jobs.a.b');
    expect(matches(worker.configure, queue)).toBe(true);
    expect(matches(worker.read, queue)).toBe(true);
    for (const lookalike of [
      'warren.jobs.aXb',
      'warrenXjobs.a.b',
      'warren.jobs.a.b.extra',
      'xwarren.jobs.a.b',
      'warren.jobs.a',
    ]) {
      expect(matches(worker.configure, lookalike)).toBe(false);
      expect(matches(worker.write, lookalike)).toBe(false);
      expect(matches(worker.read, lookalike)).toBe(false);
    }
  });

  it('grant nothing with ^$ where a role needs nothing', () => {
    const batch = account(planned, 'a-batch');

    expect(batch.configure).toBe('^$');
    expect(batch.read).toBe('^$');
    expect(batch.write).toBe('^warren\\.jobs$');
  });
});

describe("a worker's permissions", () => {
  const planned = plan();
  const worker = account(planned, 'a-worker');
  const own = ['public', 'restricted'].map((scope) => allNames('a.b', scope));
  const other = allNames('embed', 'public');

  it('let it declare every name of each topology it serves', () => {
    for (const { topology, queues } of own) {
      const exchanges = [
        topology.jobsExchange,
        topology.deadLetterExchange,
        topology.resultsExchange,
      ];
      for (const name of [...queues, ...exchanges]) {
        expect(matches(worker.configure, name), name).toBe(true);
      }
    }
  });

  it('let it bind and consume its own queues, and declare them with their dead-letter exchange', () => {
    for (const { topology, delayQueues } of own) {
      // The queue side of a bind is a write; declaring with a dead-letter exchange needs read.
      expect(matches(worker.write, topology.queue)).toBe(true);
      expect(matches(worker.write, topology.deadLetterQueue)).toBe(true);
      expect(matches(worker.read, topology.queue)).toBe(true);
      for (const name of delayQueues) expect(matches(worker.read, name), name).toBe(true);
      // The exchange side of a bind is a read.
      expect(matches(worker.read, topology.jobsExchange)).toBe(true);
      expect(matches(worker.read, topology.deadLetterExchange)).toBe(true);
    }
  });

  it('let it publish results, dead letters, and retries and give-backs through the default exchange', () => {
    const { topology } = own[0]!;

    for (const exchange of [topology.resultsExchange, topology.deadLetterExchange, 'amq.default']) {
      expect(matches(worker.write, exchange), exchange).toBe(true);
    }
    expect(matches(worker.write, topology.jobsExchange)).toBe(false);
  });

  it("cover none of another team's queues", () => {
    for (const name of other.queues) {
      expect(matches(worker.configure, name), name).toBe(false);
      expect(matches(worker.write, name), name).toBe(false);
      expect(matches(worker.read, name), name).toBe(false);
    }
  });

  it('neither consume its dead letters nor read the results exchange', () => {
    const { topology } = own[0]!;

    expect(matches(worker.read, topology.deadLetterQueue)).toBe(false);
    expect(matches(worker.read, topology.resultsExchange)).toBe(false);
  });

  it('let it bind only its own routing keys on the jobs exchange, and publish none there', () => {
    const jobs = topic(worker, 'warren.jobs');

    expect(matches(jobs.read, 'a.b.public')).toBe(true);
    expect(matches(jobs.read, 'a.b.restricted')).toBe(true);
    for (const key of ['#', 'a.b.*', 'a.b.#', 'embed.public', 'aXb.public', 'a.b.secret']) {
      expect(matches(jobs.read, key), key).toBe(false);
    }
    expect(jobs.write).toBe('^$');
  });

  it("let it publish only its own model type's results", () => {
    const results = topic(worker, 'warren.results');

    expect(matches(results.write, 'a.b.acme')).toBe(true);
    expect(matches(results.write, 'a.b.acme.eu')).toBe(true);
    expect(matches(results.write, 'embed.acme')).toBe(false);
    expect(matches(results.write, 'aXb.acme')).toBe(false);
    expect(matches(results.write, 'a.b.')).toBe(false);
  });

  it('name the delay queues of the retry policy declared for it', () => {
    const value = structuredClone(DECLARATION);
    value.teams[0]!.workers![0]!.retry = { maxAttempts: 2, initialDelayMs: 250, jitter: 0 };

    const configure = account(plan(value), 'a-worker').configure;

    expect(matches(configure, 'warren.delay.a.b.250ms')).toBe(true);
    expect(matches(configure, 'warren.delay.a.b:restricted.250ms')).toBe(true);
    expect(matches(configure, 'warren.delay.a.b.1000ms')).toBe(false);
  });
});

describe("a producer's permissions", () => {
  const planned = plan();

  it('let it publish to the jobs exchange only', () => {
    const api = account(planned, 'a-api');

    expect(matches(api.write, 'warren.jobs')).toBe(true);
    for (const name of ['amq.default', 'warren.results', 'warren.dead-letter', 'warren.jobs.a.b']) {
      expect(matches(api.write, name), name).toBe(false);
    }
  });

  it('limit its routing keys to the model types and scopes it was given, one topic pattern per scope', () => {
    const api = topic(account(planned, 'a-api'), 'warren.jobs');
    const batch = topic(account(planned, 'a-batch'), 'warren.jobs');

    expect(api.write).toBe('^a\\.b\\.public$');
    expect(batch.write).toBe('^a\\.b\\.restricted$');
    expect(matches(api.write, 'a.b.restricted')).toBe(false);
    expect(matches(api.write, 'embed.public')).toBe(false);
    expect(api.read).toBe('^$');
  });

  it('let one that waits for results declare and consume server-named queues only', () => {
    const api = account(planned, 'a-api');

    for (const pattern of [api.configure, api.read]) {
      expect(matches(pattern, 'amq.gen-JzTY20BRgKO-HjmUJj0wLg')).toBe(true);
      expect(matches(pattern, 'warren.jobs.a.b')).toBe(false);
      expect(matches(pattern, 'amq.rabbitmq.reply-to')).toBe(false);
    }
  });
});

describe("a result reader's permissions", () => {
  const reader = account(plan(), 'a-indexer');

  it('let it declare, bind and consume its own queue, and bind it to the results exchange', () => {
    expect(reader.configure).toBe('^a\\.results$');
    expect(reader.write).toBe('^a\\.results$');
    expect(matches(reader.read, 'a.results')).toBe(true);
    expect(matches(reader.read, 'warren.results')).toBe(true);
    expect(matches(reader.read, 'warren.jobs')).toBe(false);
  });

  it("let it bind its model type's results by tenant or with *, and nothing wider", () => {
    const results = topic(reader, 'warren.results');

    expect(matches(results.read, 'a.b.acme')).toBe(true);
    expect(matches(results.read, 'a.b.*')).toBe(true);
    for (const key of ['#', 'a.b.#', 'a.#', 'a.*', 'embed.acme', 'a.b.acme.eu', 'aXb.acme']) {
      expect(matches(results.read, key), key).toBe(false);
    }
    expect(results.write).toBe('^$');
  });
});

describe('accounts with several roles', () => {
  it('get the union of what each role needs', () => {
    const value = structuredClone(DECLARATION);
    value.teams[1]!.producers!.push({
      user: 'a-worker',
      modelTypes: ['embed'],
      scopes: ['public'],
    });

    const worker = account(plan(value), 'a-worker');

    expect(worker.roles).toEqual(['team-a worker', 'team-b producer']);
    expect(matches(worker.write, 'warren.jobs')).toBe(true);
    const jobs = topic(worker, 'warren.jobs');
    expect(matches(jobs.write, 'embed.public')).toBe(true);
    expect(matches(jobs.read, 'a.b.public')).toBe(true);
    expect(matches(jobs.read, 'embed.public')).toBe(false);
  });
});

describe('the worker settings', () => {
  it("give each worker its peers on shared queues as relays, not other teams' workers", () => {
    const value = structuredClone(DECLARATION);
    value.teams[0]!.workers!.push({ user: 'a-worker-2', modelTypes: ['a.b'], scopes: ['public'] });

    const workers = plan(value).workers;

    expect(workers.map((w) => [w.user, w.relays])).toEqual([
      ['a-worker', ['a-worker', 'a-worker-2']],
      ['a-worker-2', ['a-worker', 'a-worker-2']],
      ['b-worker', ['b-worker']],
    ]);
  });

  it('give each served model type its scopes and, by scope, the producers allowed', () => {
    const [aWorker] = plan().workers;

    expect(aWorker!.clearance).toEqual({
      'a.b': {
        scopes: ['public', 'restricted'],
        producers: { public: ['a-api'], restricted: ['a-batch'] },
      },
    });
  });
});

describe('the warnings', () => {
  it('name a served scope no producer publishes, and a published scope no worker serves', () => {
    const value = structuredClone(DECLARATION);
    value.teams[0]!.producers = [{ user: 'a-api', modelTypes: ['a.b'], scopes: ['public'] }];
    value.teams[1]!.producers!.push({ user: 'b-api', modelTypes: ['embed'], scopes: ['secret'] });

    const { warnings, workers } = plan(value);

    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^a\.b scope restricted: served by a-worker, but no producer/);
    expect(warnings[1]).toMatch(
      /^embed scope secret: published by b-api, but no worker in the declaration serves it/,
    );
    expect(workers[0]!.clearance['a.b']!.producers).toEqual({ public: ['a-api'] });
  });

  it('name a model type whose name extends another’s, whose results the other’s workers could publish', () => {
    const value = structuredClone(DECLARATION);
    value.teams[1]!.workers!.push({ user: 'c-worker', modelTypes: ['a.b.c'], scopes: ['public'] });
    value.teams[1]!.producers!.push({ user: 'c-api', modelTypes: ['a.b.c'], scopes: ['public'] });

    const { warnings } = plan(value);

    expect(warnings).toEqual([
      expect.stringMatching(/^model types a\.b and a\.b\.c: a worker of a\.b may publish results/),
    ]);
  });

  it('are none for a declaration where every scope has both sides', () => {
    expect(plan().warnings).toEqual([]);
  });
});
