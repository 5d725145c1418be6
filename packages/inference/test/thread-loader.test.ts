import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { InferenceError, ModelLoadError } from '@warren/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createThreadLoader, LocalInference } from '../src/index.ts';
import { modelsDir, readStsPairs } from './fixtures/shared-assets.ts';
import { writeTinyClassifier } from './fixtures/tiny-classifier.ts';

const model = 'use-lite-en';
const local = { localModelPath: modelsDir, allowRemoteModels: false } as const;

/** A thread loader that records every thread it starts, and whether each has exited. */
function watchedLoader() {
  const threads: Worker[] = [];
  const exited = new Set<Worker>();
  const loader = createThreadLoader({
    onThreadStart: (thread) => {
      threads.push(thread);
      thread.once('exit', () => exited.add(thread));
    },
  });
  return { loader, threads, exited };
}

/** The threads this process has, as Linux counts them. */
function osThreads(): number {
  const match = /^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf-8'));
  if (match === null) throw new Error('no Threads line in /proc/self/status');
  return Number(match[1]);
}

/** The largest difference between two lists of vectors of the same shape. */
function maxDifference(a: number[][], b: number[][]): number {
  expect(a.map((row) => row.length)).toEqual(b.map((row) => row.length));
  return Math.max(
    ...a.flatMap((row, i) => row.map((value, k) => Math.abs(value - (b[i]?.[k] ?? 0)))),
  );
}

describe('LocalInference with the model in a worker thread', () => {
  const clients: LocalInference[] = [];
  const client = (options: ConstructorParameters<typeof LocalInference>[0]) => {
    const created = new LocalInference(options);
    clients.push(created);
    return created;
  };

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((created) => created.close()));
  });

  it('gives the same embeddings as the in-process path, within 1e-5', async () => {
    const pairs = await readStsPairs(8);
    const inputs = pairs.flatMap((pair) => [pair.sentence1, pair.sentence2]);
    const threaded = client({ ...local, thread: true });
    const inProcess = client({ ...local, thread: false });

    for (const pooling of ['cls', 'mean'] as const) {
      const fromThread = await threaded.featureExtraction({ model, inputs, pooling });
      const fromProcess = await inProcess.featureExtraction({ model, inputs, pooling });

      expect(fromThread).toHaveLength(16);
      expect(maxDifference(fromThread, fromProcess)).toBeLessThan(1e-5);
    }
  });

  it('runs each model in a thread of its own and answers concurrent requests by id', async () => {
    const { loader, threads } = watchedLoader();
    const threaded = client({ ...local, loader });
    const inputs = ['A girl is styling her hair.', 'hi', 'A group of men play soccer.'];
    const inProcess = client({ ...local, thread: false });

    const answers = await Promise.all(
      inputs.map((input) => threaded.featureExtraction({ model, inputs: [input], pooling: 'cls' })),
    );
    const expected = await inProcess.featureExtraction({ model, inputs, pooling: 'cls' });

    expect(threads).toHaveLength(1);
    expect(maxDifference(answers.flat(), expected)).toBeLessThan(1e-5);
  });

  it('rejects a missing model folder with a clear ModelLoadError, leaving no thread', async () => {
    const { loader, threads, exited } = watchedLoader();
    const threaded = client({ ...local, loader });

    const call = threaded.featureExtraction({ model: 'not-here', inputs: ['x'] });

    await expect(call).rejects.toBeInstanceOf(ModelLoadError);
    await expect(call).rejects.toThrow(
      /Could not load model "not-here" for feature-extraction from .*: .*not-here\/config\.json/,
    );
    expect(threads.every((thread) => exited.has(thread))).toBe(true);
  });

  describe('when the weights are missing, so the load fails in the thread', () => {
    let scratch: string;

    beforeAll(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'warren-thread-'));
      const folder = path.join(scratch, 'no-weights');
      await mkdir(folder);
      for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
        await symlink(path.join(modelsDir, model, file), path.join(folder, file));
      }
    });

    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
    });

    it('rejects with ModelLoadError naming the missing file, and stops the thread', async () => {
      const { loader, threads, exited } = watchedLoader();
      const threaded = client({ localModelPath: scratch, allowRemoteModels: false, loader });

      const call = threaded.load('feature-extraction', 'no-weights');

      await expect(call).rejects.toBeInstanceOf(ModelLoadError);
      await expect(call).rejects.toThrow(
        /Could not load model "no-weights" for feature-extraction .*no-weights\/onnx\/model\.onnx/,
      );
      expect(threads).toHaveLength(1);
      expect(exited.has(threads[0]!)).toBe(true);
    });
  });

  it('rejects the request of a thread that dies with InferenceError, then restarts', async () => {
    const { loader, threads } = watchedLoader();
    const threaded = client({ ...local, loader });
    await threaded.load('feature-extraction', model);

    // A message the thread does not know makes it throw and die; the request sent right after is
    // left waiting on a dead thread. (Not terminate(): cutting an ONNX run short aborts the process.)
    threads[0]!.postMessage({ type: 'no-such-message' });
    const call = threaded.featureExtraction({ model, inputs: ['A girl is styling her hair.'] });

    await expect(call).rejects.toBeInstanceOf(InferenceError);
    await expect(call).rejects.toThrow(
      'Model "use-lite-en" failed: its thread stopped (exit code 1) before answering: ' +
        'model thread: unknown message type "no-such-message"',
    );
    const [vector] = await threaded.featureExtraction({ model, inputs: ['hi'], pooling: 'cls' });
    expect(vector).toHaveLength(512);
    expect(threads).toHaveLength(2);
  });

  it('lets a request already sent finish on close, then ends the thread and loads again', async () => {
    const { loader, threads, exited } = watchedLoader();
    const threaded = client({ ...local, loader });
    await threaded.load('feature-extraction', model);
    const inputs = Array.from({ length: 32 }, () => 'word '.repeat(120));

    const running = threaded.featureExtraction({ model, inputs, pooling: 'cls' });
    await new Promise((resolve) => setImmediate(resolve));
    await threaded.close();

    await expect(running).resolves.toHaveLength(32);
    expect(exited.has(threads[0]!)).toBe(true);
    const [vector] = await threaded.featureExtraction({ model, inputs: ['hi'], pooling: 'cls' });
    expect(vector).toHaveLength(512);
    expect(threads).toHaveLength(2);
  });

  it('loads the model afresh for a request made while it is being unloaded', async () => {
    const { loader, threads } = watchedLoader();
    const threaded = client({ ...local, loader });
    await threaded.load('feature-extraction', model);

    const closing = threaded.close();
    const late = threaded.featureExtraction({ model, inputs: ['hi'], pooling: 'cls' });
    await closing;

    await expect(late).resolves.toHaveLength(1);
    expect(threads).toHaveLength(2);
  });

  it('keeps a model shared by two clients until both have closed', async () => {
    const { loader, threads, exited } = watchedLoader();
    const first = client({ ...local, loader });
    const second = client({ ...local, loader });
    await first.load('feature-extraction', model);
    await second.load('feature-extraction', model);

    await first.close();
    const [vector] = await second.featureExtraction({ model, inputs: ['hi'], pooling: 'cls' });
    expect(vector).toHaveLength(512);
    expect(exited.size).toBe(0);

    await second.close();
    expect(threads.every((thread) => exited.has(thread))).toBe(true);
  });

  // /proc/self/status is Linux's; elsewhere nothing here can count a process's threads.
  it.runIf(process.platform === 'linux')(
    'gives ONNX Runtime intraOpThreads: each thread more is one more OS thread while it is loaded',
    async () => {
      const growth = async (intraOpThreads: number) => {
        const before = osThreads();
        const loaded = client({ ...local, intraOpThreads });
        await loaded.load('feature-extraction', model);
        const grown = osThreads() - before;
        await loaded.featureExtraction({ model, inputs: ['hi'], pooling: 'cls' });
        await loaded.close();
        return grown;
      };

      expect((await growth(3)) - (await growth(1))).toBe(2);
    },
  );

  describe('with a text classifier', () => {
    let scratch: string;

    beforeAll(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'warren-thread-classifier-'));
      await writeTinyClassifier(scratch, 'tiny-classifier', path.join(modelsDir, model));
    });

    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
    });

    it('gives the same labels and scores as the in-process path', async () => {
      const source = { localModelPath: scratch, allowRemoteModels: false } as const;
      const request = {
        model: 'tiny-classifier',
        inputs: ['A girl is styling her hair.', 'hi', 'The quick brown fox'],
        topK: 3,
      };

      const fromThread = await client({ ...source }).textClassification(request);
      const fromProcess = await client({ ...source, thread: false }).textClassification(request);

      expect(fromThread.map((labels) => labels.map((entry) => entry.label))).toEqual(
        fromProcess.map((labels) => labels.map((entry) => entry.label)),
      );
      fromThread.flat().forEach((entry, i) => {
        expect(Math.abs(entry.score - (fromProcess.flat()[i]?.score ?? 0))).toBeLessThan(1e-6);
      });
    });
  });
});
