import { ConfigError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import {
  type PermissionsDeclarationInput,
  parsePermissionsDeclaration,
  planPermissions,
} from '../src/index.ts';

function declaration(
  overrides: Partial<PermissionsDeclarationInput> = {},
): PermissionsDeclarationInput {
  return {
    vhost: '/',
    teams: [
      {
        name: 'search',
        workers: [{ user: 'search-worker', modelTypes: ['embed'], scopes: ['public'] }],
        producers: [{ user: 'search-api', modelTypes: ['embed'], scopes: ['public'] }],
      },
    ],
    ...overrides,
  };
}

/** The message of the ConfigError that `run` throws; fails when it throws none. */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

const refusalOf = (value: unknown) => refusal(() => parsePermissionsDeclaration(value));
const planRefusalOf = (value: PermissionsDeclarationInput) =>
  refusal(() => planPermissions(parsePermissionsDeclaration(value)));

describe('parsePermissionsDeclaration', () => {
  it('fills in the prefix, reply queues and empty role lists', () => {
    const parsed = parsePermissionsDeclaration(declaration());

    expect(parsed.prefix).toBe('warren');
    expect(parsed.teams[0]!.producers[0]!.replyQueues).toBe(false);
    expect(parsed.teams[0]!.resultReaders).toEqual([]);
  });

  it('names a missing vhost and a missing teams list', () => {
    const message = refusalOf({});

    expect(message).toContain('declaration.vhost: expected string, found nothing');
    expect(message).toContain('declaration.teams: expected array, found nothing');
  });

  it('names each bad field of a worker, with what was found', () => {
    const message = refusalOf(
      declaration({
        teams: [
          {
            name: 'search',
            workers: [{ user: '-worker', modelTypes: ['Embed'], scopes: ['pub.lic'] }],
          },
        ],
      }),
    );

    expect(message).toContain('declaration.teams[0].workers[0].user:');
    expect(message).toContain('found "-worker"');
    expect(message).toContain('declaration.teams[0].workers[0].modelTypes[0]:');
    expect(message).toContain('found "Embed"');
    expect(message).toContain('declaration.teams[0].workers[0].scopes[0]:');
    expect(message).toContain('found "pub.lic"');
  });

  it('refuses a producer with no scope', () => {
    const message = refusalOf(
      declaration({
        teams: [
          { name: 'search', producers: [{ user: 'api', modelTypes: ['embed'], scopes: [] }] },
        ],
      }),
    );

    expect(message).toBe(
      'declaration.teams[0].producers[0].scopes: expected at least 1 items, found an array of 0',
    );
  });

  it('refuses a field it does not know, rather than ignoring it', () => {
    const message = refusalOf({ ...declaration(), queueType: 'quorum' });

    expect(message).toBe('declaration: unexpected field queueType');
  });

  it('refuses a team with no account, and a team name used twice', () => {
    const message = refusalOf(
      declaration({
        teams: [
          {
            name: 'search',
            producers: [{ user: 'api', modelTypes: ['embed'], scopes: ['public'] }],
          },
          { name: 'search' },
        ],
      }),
    );

    expect(message).toContain(
      'declaration.teams[1]: expected at least one worker, producer or result reader',
    );
    expect(message).toContain(
      'declaration.teams[1].name: expected each team name once; teams[0] has it already',
    );
  });

  it("refuses a result reader's queue in the broker's own amq. namespace", () => {
    const message = refusalOf(
      declaration({
        teams: [
          {
            name: 'search',
            resultReaders: [{ user: 'indexer', modelTypes: ['embed'], queues: ['amq.gen-x'] }],
          },
        ],
      }),
    );

    expect(message).toContain('declaration.teams[0].resultReaders[0].queues[0]:');
    expect(message).toContain('not starting with amq.');
  });

  it('refuses a vhost that holds a control character or reads as an option', () => {
    expect(refusalOf(declaration({ vhost: 'a\nb' }))).toContain('declaration.vhost:');
    expect(refusalOf(declaration({ vhost: '-p' }))).toContain('declaration.vhost:');
  });
});

describe('planPermissions refusals', () => {
  it('names the worker whose retry policy cannot be used', () => {
    const value = declaration();
    value.teams[0]!.workers![0]!.retry = { initialDelayMs: 5_000, maxDelayMs: 1_000 };

    expect(planRefusalOf(value)).toBe(
      'declaration.teams[0].workers[0].retry.maxDelayMs: expected at least initialDelayMs (5000), found 1000',
    );
  });

  it('names the declaration-wide retry policy when that is the one at fault', () => {
    const message = planRefusalOf(
      declaration({ retry: { initialDelayMs: 5_000, maxDelayMs: 1_000 } }),
    );

    expect(message).toMatch(/^declaration\.retry\.maxDelayMs: /);
  });

  it('names the worker whose policy needs more delay queues than topologyFor allows', () => {
    const value = declaration();
    value.teams[0]!.workers![0]!.retry = {
      maxAttempts: 200,
      multiplier: 1.01,
      maxDelayMs: 3_600_000,
    };

    const message = planRefusalOf(value);

    expect(message).toMatch(
      /^declaration\.teams\[0\]\.workers\[0\]: retry: the policy needs \d+ delay queues/,
    );
    expect(message).toContain('(model type embed)');
  });

  it("refuses a result reader's queue that is one of Warren's own", () => {
    const value = declaration();
    value.teams[0]!.resultReaders = [
      { user: 'indexer', modelTypes: ['embed'], queues: ['warren.dead-letter.embed'] },
    ];

    expect(planRefusalOf(value)).toBe(
      'declaration.teams[0].resultReaders[0].queues[0]: expected a queue of the reader\'s own, found "warren.dead-letter.embed", a name of Warren\'s topology',
    );
  });

  it('refuses two accounts that would read their password from the same variable', () => {
    const value = declaration();
    value.teams[0]!.producers!.push({
      user: 'Search_API',
      modelTypes: ['embed'],
      scopes: ['public'],
    });

    expect(planRefusalOf(value)).toContain(
      'accounts "Search_API" and "search-api" would both take their password from WARREN_PASSWORD_SEARCH_API',
    );
  });
});
