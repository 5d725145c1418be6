import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { onnxSessionOptions } from '../src/default-loader.ts';
import { modelsDir } from './fixtures/shared-assets.ts';

const run = promisify(execFile);

/** onnxruntime-node, as transformers.js resolves it (Warren reaches it only through that). */
const onnxRuntime = createRequire(
  createRequire(import.meta.url).resolve('@huggingface/transformers'),
).resolve('onnxruntime-node');

const modelFile = path.join(modelsDir, 'use-lite-en', 'onnx', 'model.onnx');

/**
 * The session config entries ONNX Runtime itself reports for a session created with `options`:
 * at its most verbose log level it prints them as it initialises the session. Run in a process of
 * its own because its log goes to the native stderr, which this process cannot capture.
 */
async function configEntriesOf(options: object): Promise<string> {
  const script = `
    const ort = require(process.argv[1]);
    const options = { ...JSON.parse(process.argv[2]), logSeverityLevel: 0 };
    ort.InferenceSession.create(process.argv[3], options).then((session) => session.release());
  `;
  const { stdout, stderr } = await run(
    process.execPath,
    ['-e', script, onnxRuntime, JSON.stringify(options), modelFile],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const entries = /config_options: \{([^}]*)\}/.exec(stdout + stderr);
  if (entries === null) throw new Error('ONNX Runtime printed no config_options');
  return entries[1]!.trim();
}

describe('ONNX Runtime session options', () => {
  it('reach ONNX Runtime as the session config entry that turns spinning off, or on', async () => {
    const off = onnxSessionOptions({ intraOpThreads: 2, allowSpinning: false });
    const on = onnxSessionOptions({ intraOpThreads: 2, allowSpinning: true });

    expect(await configEntriesOf(off)).toBe('session.intra_op.allow_spinning: 0');
    expect(await configEntriesOf(on)).toBe('session.intra_op.allow_spinning: 1');
    // Without Warren's entry ONNX Runtime lists none: the line above is ours, not a default.
    expect(await configEntriesOf({ intraOpNumThreads: 2 })).toBe('');
  });
});
