import { spawn, spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADERS } from '@warren/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, BrokerProbe, uniquePrefix, waitFor } from './support.ts';

const BIN = fileURLToPath(new URL('../bin/warren-worker.js', import.meta.url));
const RECORD = fileURLToPath(new URL('./imports/record-bare-imports.mjs', import.meta.url));

/** The package the worker imports to compile a TypeScript plugin (src/plugins.ts). */
const TSX = 'tsx/esm/api';

describe('the worker binary with plugins in JavaScript and in TypeScript', () => {
  const prefix = uniquePrefix();
  let dir: string;
  let probe: BrokerProbe;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-plugin-languages-'));
    probe = await BrokerProbe.open();
  });

  afterAll(async () => {
    await probe?.deleteTopology(prefix, ['echo']);
    await probe?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs the binary with one plugin until it has answered a job; its bare imports. */
  async function answerOneJob(plugin: string): Promise<string[]> {
    const config = join(dir, `${plugin}.json`);
    const module = fileURLToPath(new URL(`./fixtures/${plugin}`, import.meta.url));
    await writeFile(config, JSON.stringify({ topology: { prefix }, handlers: [{ module }] }));
    const child = spawn(process.execPath, ['--import', RECORD, BIN, '--config', config], {
      env: { ...process.env, AMQP_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf-8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr!.setEncoding('utf-8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    try {
      await Promise.race([
        waitFor(() => stdout.includes('consumer started'), 'the worker to start'),
        exited.then((code) => {
          throw new Error(`the worker exited (${code}) before it started:\n${stderr}${stdout}`);
        }),
      ]);
      const reply = await probe.replyQueue();
      probe.channel.publish(
        `${prefix}.jobs`,
        'echo.public',
        Buffer.from(JSON.stringify({ text: `from ${plugin}` })),
        {
          contentType: 'application/json',
          messageId: `job-${plugin}`,
          replyTo: reply.queue,
          headers: { [HEADERS.tenant]: 'acme', [HEADERS.modelType]: 'echo' },
        },
      );
      await waitFor(() => reply.messages.length === 1, 'the result');
      expect(JSON.parse(reply.messages[0]!.content.toString())).toEqual({
        echo: `from ${plugin}`,
      });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const line = stderr.split('\n').find((l) => l.startsWith('bare imports: '));
    return JSON.parse(line!.slice('bare imports: '.length)) as string[];
  }

  it('runs a JavaScript plugin without loading a TypeScript compiler', async () => {
    const imports = await answerOneJob('echo.js');
    // The recorder saw the worker's own imports, so the absence below is not a blind spot.
    expect(imports).toEqual(expect.arrayContaining(['@warren/core', 'amqplib']));
    expect(imports).not.toContain(TSX);
  });

  it('compiles a TypeScript plugin with tsx, registered when the plugin is loaded', async () => {
    const imports = await answerOneJob('echo.ts');
    expect(imports).toContain(TSX);
  });

  it('loads a TypeScript plugin named as its compiled file, which only tsx resolves', async () => {
    const imports = await answerOneJob('echo-typescript-only.js');
    expect(imports).toContain(TSX);
  });
});

describe('the worker binary in a checkout that was not built', () => {
  it('says how to build it and exits 2', async () => {
    // The bin folder beside no dist/ folder: what a clone holds before `pnpm build`.
    const dir = await mkdtemp(join(tmpdir(), 'warren-unbuilt-'));
    try {
      const bin = fileURLToPath(new URL('../bin/', import.meta.url));
      await cp(bin, join(dir, 'bin'), { recursive: true });
      const result = spawnSync(process.execPath, [join(dir, 'bin/warren-worker.js'), '--help'], {
        encoding: 'utf-8',
      });
      expect(result.status).toBe(2);
      expect(result.stderr).toContain('the worker is not built. Run `pnpm build`');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
