import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@warren/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandCredentialSource, type Credentials, credentialSource } from '../src/index.ts';

const NODE = process.execPath;

/** A command that runs `script` in Node with `args` after it. */
function node(script: string, ...args: string[]): string[] {
  return [NODE, '-e', script, ...args];
}

/** Prints credentials with the user `warren` and the password given as its argument. */
const PRINT =
  'process.stdout.write(JSON.stringify({ username: "warren", password: process.argv[1] }))';

let dir: string;
const stops: Array<() => void> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warren-command-'));
});
afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await rm(dir, { recursive: true, force: true });
});

async function failure(source: CommandCredentialSource): Promise<string> {
  const error = await source.read().catch((thrown: unknown) => thrown);
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).message;
}

describe('credentials printed by a command', () => {
  it('reads what the command prints, naming the program alone', async () => {
    const source = credentialSource({ command: node(PRINT, 's3cret') });
    expect(source.description).toBe('command node');
    expect(await source.read()).toEqual({ username: 'warren', password: 's3cret' });
  });

  it('passes its arguments as they are, without a shell to expand them', async () => {
    const argument = '$(echo expanded) `id` ; echo "and more" > /dev/null';
    const source = new CommandCredentialSource(node(PRINT, argument));
    expect((await source.read()).password).toBe(argument);
  });

  it('reports a failed run with its exit code and the last line of stderr only, shortened', async () => {
    const script =
      'console.error("token=abc123 was used"); console.error("denied: " + "x".repeat(500)); process.exit(3)';
    const message = await failure(new CommandCredentialSource(node(script, 'token=abc123')));
    expect(message).toMatch(/^command node: exited with code 3: denied: x+\.\.\.$/);
    expect(message.length).toBeLessThan(260);
    expect(message).not.toContain('abc123');
  });

  it('kills a command that runs past its timeout', async () => {
    const source = new CommandCredentialSource(node('setTimeout(() => {}, 60_000)'), {
      timeoutMs: 200,
    });
    expect(await failure(source)).toBe(
      'command node: did not finish within 200 ms, and was killed',
    );
  });

  it('reports a program that cannot be run', async () => {
    const source = new CommandCredentialSource([join(dir, 'no-such-program')]);
    expect(await failure(source)).toBe('command no-such-program: cannot be run (ENOENT)');
  });

  it('refuses output that is not the JSON it expects, or too much of it, without quoting it', async () => {
    const text = await failure(new CommandCredentialSource(node('console.log("hunter2")')));
    expect(text).toBe(
      'command node: expected JSON {"username": "...", "password": "..."}, found text that is not JSON',
    );
    const flood = await failure(
      new CommandCredentialSource(node('process.stdout.write("x".repeat(200_000))')),
    );
    expect(flood).toMatch(/^command node: expected at most \d+ bytes of output, found more$/);
  });

  it('refuses an empty command', () => {
    expect(() => new CommandCredentialSource([])).toThrow(ConfigError);
  });

  it('runs again every refreshIntervalMs while watched, and reports only real changes', async () => {
    const path = join(dir, 'password.txt');
    await writeFile(path, 'one');
    const script =
      'const text = require("node:fs").readFileSync(process.argv[1], "utf-8");' +
      'if (text === "fail") { console.error("vault sealed"); process.exit(2); }' +
      'process.stdout.write(JSON.stringify({ username: "warren", password: text }))';
    const source = new CommandCredentialSource(node(script, path), { refreshIntervalMs: 100 });
    await source.read();
    const changes: Credentials[] = [];
    const errors: ConfigError[] = [];
    stops.push(
      source.watch({
        onChange: (credentials) => changes.push(credentials),
        onError: (error) => errors.push(error),
      }),
    );

    // Several runs with the same output: nothing to report.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(changes).toEqual([]);
    await writeFile(path, 'fail');
    await until(() => errors.length === 1);
    expect(errors[0]?.message).toBe('command node: exited with code 2: vault sealed');
    await writeFile(path, 'two');
    await until(() => changes.length === 1);
    expect(changes).toEqual([{ username: 'warren', password: 'two' }]);
  });
});

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
