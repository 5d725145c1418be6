import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { modelsDir } from './fixtures/shared-assets.ts';

const run = promisify(execFile);

/**
 * How the script's process is started: a heap limit, as docs/operating.md advises, and code on the
 * command line. A model thread takes these options, and Node refuses to start a thread from a
 * file with `--input-type`, or with V8 options handed to it explicitly: the thread must start.
 */
const NODE_OPTIONS = ['--max-old-space-size=512', '--input-type=module'];

/** packages/inference: a script run there resolves `@warren/inference` (its dist) and its deps. */
const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The session config entries ONNX Runtime itself reports when LocalInference, built with
 * `options`, loads use-lite-en. At transformers.js's debug log level, which the model thread
 * takes from the calling thread, ONNX Runtime prints them as it initialises the session. Run in a
 * process of its own: that log goes to the native stderr, which this process cannot capture.
 */
async function configEntriesOf(options: { thread: boolean; allowSpinning?: boolean }) {
  const script = `
    const { env } = await import('@huggingface/transformers');
    env.logLevel = 10;
    const { LocalInference } = await import('@warren/inference');
    const options = JSON.parse(process.argv[1]);
    const client = new LocalInference({ allowRemoteModels: false, ...options });
    await client.load('feature-extraction', 'use-lite-en');
    await client.close();
  `;
  const { stdout, stderr } = await run(
    process.execPath,
    [...NODE_OPTIONS, '-e', script, JSON.stringify({ localModelPath: modelsDir, ...options })],
    { cwd: packageDir, maxBuffer: 64 * 1024 * 1024 },
  );
  const entries = [...(stdout + stderr).matchAll(/config_options: \{([^}]*)\}/g)];
  // One session, whichever thread creates it.
  expect(entries).toHaveLength(1);
  return entries[0]![1]!.trim();
}

describe("LocalInference's ONNX Runtime session", () => {
  it.each([true, false])(
    'gets the config entry that turns spinning off by default, or on (model thread: %s; process started with a heap limit and -e)',
    async (thread) => {
      const off = 'session.intra_op.allow_spinning: 0';
      expect(await configEntriesOf({ thread })).toBe(off);
      expect(await configEntriesOf({ thread, allowSpinning: false })).toBe(off);
      expect(await configEntriesOf({ thread, allowSpinning: true })).toBe(
        'session.intra_op.allow_spinning: 1',
      );
    },
  );
});
