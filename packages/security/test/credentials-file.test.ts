import { link, mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigError } from '@warren/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Credentials, FileCredentialSource } from '../src/index.ts';

let dir: string;
const stops: Array<() => void> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warren-credentials-'));
});
afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await rm(dir, { recursive: true, force: true });
});

function json(password: string, username = 'warren'): string {
  return JSON.stringify({ username, password });
}

/** Watches `source`, keeping what it reports. */
function watching(source: FileCredentialSource) {
  const changes: Credentials[] = [];
  const errors: ConfigError[] = [];
  stops.push(
    source.watch({
      onChange: (credentials) => changes.push(credentials),
      onError: (error) => errors.push(error),
    }),
  );
  return { changes, errors };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Long enough for a change event and the read after it to have come, had there been one. */
function quietFor(ms = 300): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('credentials in a file', () => {
  it('reads the file, naming it in errors', async () => {
    const path = join(dir, 'broker.json');
    await writeFile(path, json('one'));
    const source = new FileCredentialSource(path);
    expect(source.description).toBe(`file ${path}`);
    expect(await source.read()).toEqual({ username: 'warren', password: 'one' });

    await unlink(path);
    await expect(source.read()).rejects.toThrow(`file ${path}: cannot be read (ENOENT)`);
  });

  it('reports a file rewritten in place, once per change', async () => {
    const path = join(dir, 'broker.json');
    await writeFile(path, json('one'));
    const source = new FileCredentialSource(path);
    await source.read();
    const { changes, errors } = watching(source);

    await writeFile(path, json('two'));
    await until(() => changes.length === 1, 'the change');
    await writeFile(path, json('three'));
    await until(() => changes.length === 2, 'the second change');
    expect(changes.map((c) => c.password)).toEqual(['two', 'three']);
    expect(errors).toEqual([]);
  });

  it('reports a file replaced by an atomic rename', async () => {
    const path = join(dir, 'broker.json');
    await writeFile(path, json('one'));
    const source = new FileCredentialSource(path);
    await source.read();
    const { changes } = watching(source);

    await writeFile(join(dir, 'broker.json.tmp'), json('two'));
    await rename(join(dir, 'broker.json.tmp'), path);
    await until(() => changes.length === 1, 'the change');
    expect(changes[0]).toEqual({ username: 'warren', password: 'two' });
  });

  it('reports a Kubernetes-style swap of the symbolic link the path goes through', async () => {
    // A mounted secret: broker.json -> ..data/broker.json, ..data -> a timestamped folder. An
    // update writes a new folder and renames a new ..data link over the old one.
    await mkdir(join(dir, '..2026_01'));
    await writeFile(join(dir, '..2026_01', 'broker.json'), json('one'));
    await symlink('..2026_01', join(dir, '..data'));
    await symlink(join('..data', 'broker.json'), join(dir, 'broker.json'));
    const source = new FileCredentialSource(join(dir, 'broker.json'));
    expect((await source.read()).password).toBe('one');
    const { changes } = watching(source);

    await mkdir(join(dir, '..2026_02'));
    await writeFile(join(dir, '..2026_02', 'broker.json'), json('two'));
    await symlink('..2026_02', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(join(dir, '..2026_01'), { recursive: true });

    await until(() => changes.length === 1, 'the change');
    expect(changes[0]?.password).toBe('two');
  });

  it('reports nothing when the file is written again with the same credentials', async () => {
    const path = join(dir, 'broker.json');
    await writeFile(path, json('one'));
    const source = new FileCredentialSource(path);
    await source.read();
    const { changes, errors } = watching(source);

    await writeFile(path, `\n  ${json('one')}  \n`);
    await writeFile(join(dir, 'unrelated.txt'), 'another file in the folder');
    await quietFor();
    // A real change after them is still seen, so the watch was working all along.
    await writeFile(path, json('two'));
    await until(() => changes.length === 1, 'the change');
    expect(changes.map((c) => c.password)).toEqual(['two']);
    expect(errors).toEqual([]);
  });

  it('reports malformed content once as an error, without quoting it, and keeps watching', async () => {
    const path = join(dir, 'broker.json');
    await writeFile(path, json('one'));
    const source = new FileCredentialSource(path, { pollIntervalMs: 50 });
    await source.read();
    const { changes, errors } = watching(source);

    await writeFile(path, 'password=hunter2');
    await until(() => errors.length === 1, 'the error');
    // The same failure, polled again and again, is not reported again.
    await quietFor(200);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toContain(`file ${path}: expected JSON`);
    expect(errors[0]?.message).not.toContain('hunter2');

    await writeFile(path, json('two'));
    await until(() => changes.length === 1, 'the change');
    expect(changes[0]?.password).toBe('two');
  });

  it('finds a change no event announced by reading the file every pollIntervalMs', async () => {
    // Written through a hard link in another folder, the file changes without any event in the
    // folder being watched: only polling can see it.
    const path = join(dir, 'broker.json');
    await writeFile(path, json('one'));
    await mkdir(join(dir, 'elsewhere'));
    const other = join(dir, 'elsewhere', 'same-file.json');
    await link(path, other);
    const source = new FileCredentialSource(path, { pollIntervalMs: 100 });
    await source.read();
    const { changes } = watching(source);

    await writeFile(other, json('two'));
    await until(() => changes.length === 1, 'the polled change');
    expect(changes[0]?.password).toBe('two');
  });

  it('reports nothing once stopped', async () => {
    const path = join(dir, 'broker.json');
    await writeFile(path, json('one'));
    const source = new FileCredentialSource(path, { pollIntervalMs: 50 });
    await source.read();
    const { changes } = watching(source);
    stops.pop()?.();

    await writeFile(path, json('two'));
    await quietFor();
    expect(changes).toEqual([]);
  });
});
