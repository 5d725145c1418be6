import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type PermissionsDeclarationInput,
  type PermissionsPlan,
  parsePermissionsDeclaration,
  planPermissions,
  shellQuote,
  toDefinitions,
  toRabbitmqctlScript,
} from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'warren-permissions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A vhost no shell could take literally without quoting it right. */
const HOSTILE_VHOST = `it's "$HOME"; $(touch ${join(dir, 'pwned')}) \`id\` \\ * | &`;

function plan(vhost = '/'): PermissionsPlan {
  const declaration: PermissionsDeclarationInput = {
    vhost,
    teams: [
      {
        name: 'team-a',
        workers: [{ user: 'a-worker', modelTypes: ['a.b'], scopes: ['public'] }],
        producers: [{ user: 'a-api', modelTypes: ['a.b'], scopes: ['public'], replyQueues: true }],
      },
    ],
  };
  return planPermissions(parsePermissionsDeclaration(declaration));
}

/**
 * A stand-in for rabbitmqctl that records each call's arguments (and add_user's standard input)
 * and answers list_users and list_vhosts from the environment.
 */
const FAKE = join(dir, 'fake-rabbitmqctl.cjs');
writeFileSync(
  FAKE,
  `const fs = require('node:fs');
const args = process.argv.slice(2);
const stdin = args.includes('add_user') ? fs.readFileSync(0, 'utf-8') : null;
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ args, stdin }) + '\\n');
const lines = (name) => JSON.parse(process.env[name] || '[]').map((line) => line + '\\n').join('');
if (args.includes('list_users')) process.stdout.write(lines('FAKE_USERS'));
if (args.includes('list_vhosts')) process.stdout.write(lines('FAKE_VHOSTS'));
`,
);

interface Call {
  args: string[];
  stdin: string | null;
}

/** Runs the script with the fake rabbitmqctl; returns its exit status, stderr and the calls. */
function runScript(
  script: string,
  env: Record<string, string> = {},
  broker: { users?: string[]; vhosts?: string[] } = {},
): { status: number | null; stderr: string; calls: Call[] } {
  const path = join(dir, 'apply.sh');
  const log = join(dir, `calls-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(path, script);
  writeFileSync(log, '');
  const result = spawnSync('sh', [path], {
    encoding: 'utf-8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      RABBITMQCTL: `${process.execPath} ${FAKE}`,
      FAKE_LOG: log,
      FAKE_USERS: JSON.stringify((broker.users ?? []).map((user) => `${user}\t[]`)),
      FAKE_VHOSTS: JSON.stringify(broker.vhosts ?? []),
      ...env,
    },
  });
  const calls = readFileSync(log, 'utf-8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Call);
  return { status: result.status, stderr: result.stderr, calls };
}

const PASSWORDS = {
  WARREN_PASSWORD_A_WORKER: 'w0rker pass\'with"quotes',
  WARREN_PASSWORD_A_API: 'api-secret-1',
};

describe('shellQuote', () => {
  it('gives sh back exactly the string it quoted', () => {
    for (const value of [HOSTILE_VHOST, '', "'", "''", 'a\nb', '-p', '^(?:a\\.b|c)$']) {
      const echoed = spawnSync('sh', ['-c', `printf '%s' ${shellQuote(value)}`], {
        encoding: 'utf-8',
      });
      expect(echoed.stdout).toBe(value);
    }
  });
});

describe('the rabbitmqctl script', () => {
  it('passes every name and pattern to rabbitmqctl unchanged, a hostile vhost included', () => {
    const planned = plan(HOSTILE_VHOST);

    const { status, calls, stderr } = runScript(toRabbitmqctlScript(planned), PASSWORDS);

    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
    expect(calls).toContainEqual({ args: ['-q', 'add_vhost', HOSTILE_VHOST], stdin: null });
    for (const account of planned.accounts) {
      expect(calls).toContainEqual({
        args: [
          '-q',
          'set_permissions',
          '-p',
          HOSTILE_VHOST,
          account.user,
          account.configure,
          account.write,
          account.read,
        ],
        stdin: null,
      });
      for (const topic of account.topic) {
        expect(calls).toContainEqual({
          args: [
            '-q',
            'set_topic_permissions',
            '-p',
            HOSTILE_VHOST,
            account.user,
            topic.exchange,
            topic.write,
            topic.read,
          ],
          stdin: null,
        });
      }
    }
  });

  it('hands each new password to add_user on its standard input, never as an argument', () => {
    const file = join(dir, 'api-password');
    writeFileSync(file, 'from-a-file\nsecond line ignored\n');

    const { status, calls } = runScript(toRabbitmqctlScript(plan()), {
      WARREN_PASSWORD_A_WORKER: PASSWORDS.WARREN_PASSWORD_A_WORKER,
      WARREN_PASSWORD_A_API_FILE: file,
    });

    expect(status).toBe(0);
    const added = calls.filter((call) => call.args.includes('add_user'));
    expect(added).toEqual([
      { args: ['-q', 'add_user', 'a-api'], stdin: 'from-a-file\n' },
      { args: ['-q', 'add_user', 'a-worker'], stdin: `${PASSWORDS.WARREN_PASSWORD_A_WORKER}\n` },
    ]);
    const allArgs = calls.flatMap((call) => call.args).join('\n');
    expect(allArgs).not.toContain('from-a-file');
    expect(allArgs).not.toContain('w0rker');
  });

  it('changes nothing and names the variables when a new account has no password', () => {
    const { status, stderr, calls } = runScript(toRabbitmqctlScript(plan()), {
      WARREN_PASSWORD_A_WORKER: 'set',
    });

    expect(status).toBe(1);
    expect(stderr).toContain('no password for new accounts; set WARREN_PASSWORD_A_API');
    expect(stderr).not.toContain('WARREN_PASSWORD_A_WORKER');
    expect(calls.map((call) => call.args[1])).toEqual(['list_users']);
  });

  it('keeps the password of an account that exists, and creates no vhost that exists', () => {
    const { status, calls } = runScript(
      toRabbitmqctlScript(plan()),
      {},
      { users: ['a-worker', 'a-api'], vhosts: ['/'] },
    );

    expect(status).toBe(0);
    const commands = calls.map((call) => call.args[1]);
    expect(commands).not.toContain('add_user');
    expect(commands).not.toContain('add_vhost');
    expect(commands.filter((c) => c === 'set_permissions')).toHaveLength(2);
  });

  it("sets an account's topic permissions before the permissions they limit", () => {
    const { calls } = runScript(toRabbitmqctlScript(plan()), PASSWORDS);

    for (const user of ['a-api', 'a-worker']) {
      const commands = calls.filter((call) => call.args.includes(user)).map((call) => call.args[1]);
      expect(commands.at(-1)).toBe('set_permissions');
      expect(commands.slice(1, -1).every((c) => c === 'set_topic_permissions')).toBe(true);
      expect(commands.slice(1, -1).length).toBeGreaterThan(0);
    }
  });
});

describe('the definitions', () => {
  const planned = plan('/');

  it('list each account with no password hash and no tags, and its permissions', () => {
    const definitions = toDefinitions(planned);

    expect(definitions.users).toEqual([
      { name: 'a-api', tags: [] },
      { name: 'a-worker', tags: [] },
    ]);
    expect(definitions.vhosts).toEqual([{ name: '/' }]);
    const api = planned.accounts[0]!;
    expect(definitions.permissions[0]).toEqual({
      user: 'a-api',
      vhost: '/',
      configure: api.configure,
      write: api.write,
      read: api.read,
    });
    expect(definitions.topic_permissions).toContainEqual({
      user: 'a-api',
      vhost: '/',
      exchange: 'warren.jobs',
      write: '^a\\.b\\.public$',
      read: '^$',
    });
    expect(definitions.topic_permissions).toHaveLength(3);
    expect(JSON.stringify(definitions)).not.toMatch(/password/);
  });

  it('leave the accounts out when asked, for a broker that has them already', () => {
    const definitions = toDefinitions(planned, { users: false });

    expect(definitions.users).toBeUndefined();
    expect(definitions.permissions).toHaveLength(2);
  });
});
