import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, type FeatureExtractionRequest, ModelLoadError } from '@warren/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  defaultIntraOpThreads,
  LocalInference,
  loadWithTransformers,
  type PipelineLoader,
  type PipelineLoadOptions,
} from '../src/index.ts';
import { modelsDir } from './fixtures/shared-assets.ts';

/** A loader that counts its calls and then loads for real with transformers.js. */
function countingLoader(): { loader: PipelineLoader; calls: () => number } {
  let calls = 0;
  const loader: PipelineLoader = (task, model, options) => {
    calls++;
    return loadWithTransformers(task, model, options);
  };
  return { loader, calls: () => calls };
}

describe('LocalInference model loading', () => {
  let scratch: string;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'warren-models-'));
  });

  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('loads a model once for five concurrent first callers', async () => {
    const { loader, calls } = countingLoader();
    const client = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      loader,
    });
    const request: FeatureExtractionRequest = {
      model: 'use-lite-en',
      inputs: ['same text'],
      pooling: 'cls',
    };

    const results = await Promise.all(
      Array.from({ length: 5 }, () => client.featureExtraction(request)),
    );

    expect(calls()).toBe(1);
    for (const result of results) expect(result).toEqual(results[0]);
  });

  it('shares the loaded model between clients with the same settings', async () => {
    const { loader, calls } = countingLoader();
    const first = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      loader,
    });
    const second = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      loader,
    });

    await first.load('feature-extraction', 'use-lite-en');
    await second.featureExtraction({ model: 'use-lite-en', inputs: ['x'], pooling: 'cls' });

    expect(calls()).toBe(1);
  });

  it('rejects with ModelLoadError naming the model when its folder is missing', async () => {
    const client = new LocalInference({ localModelPath: scratch, allowRemoteModels: false });

    const call = client.featureExtraction({ model: 'not-here', inputs: ['x'] });

    await expect(call).rejects.toBeInstanceOf(ModelLoadError);
    await expect(call).rejects.toThrow(/Could not load model "not-here" for feature-extraction/);
    await expect(call).rejects.toMatchObject({ code: 'WARREN_MODEL_LOAD_FAILED' });
  });

  it('does not cache a failed load: the next call loads once the folder exists', async () => {
    const { loader, calls } = countingLoader();
    const client = new LocalInference({
      localModelPath: scratch,
      allowRemoteModels: false,
      loader,
    });

    await expect(client.load('feature-extraction', 'late-model')).rejects.toThrow(ModelLoadError);
    await symlink(path.join(modelsDir, 'use-lite-en'), path.join(scratch, 'late-model'));
    const vectors = await client.featureExtraction({
      model: 'late-model',
      inputs: ['x'],
      pooling: 'cls',
    });

    expect(calls()).toBe(2);
    expect(vectors[0]).toHaveLength(512);
  });

  it('keeps the settings of two clients apart when they load at the same time', async () => {
    await symlink(path.join(modelsDir, 'use-lite-en'), path.join(scratch, 'only-here'));
    const { loader } = countingLoader();
    const shared = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      loader,
    });
    const own = new LocalInference({ localModelPath: scratch, allowRemoteModels: false, loader });

    const [fromShared, fromOwn, missing] = await Promise.allSettled([
      shared.load('feature-extraction', 'use-lite-en'),
      own.load('feature-extraction', 'only-here'),
      own.load('feature-extraction', 'use-lite-en'),
    ]);

    expect(fromShared.status).toBe('fulfilled');
    expect(fromOwn.status).toBe('fulfilled');
    expect(missing.status).toBe('rejected');
  });

  it('loads with intraOpThreads (by default one fewer than the cores, but two on two) and spinning off by default, apart per value', async () => {
    const seen: PipelineLoadOptions[] = [];
    const loader: PipelineLoader = (task, model, options) => {
      seen.push(options);
      return loadWithTransformers(task, model, options);
    };
    const local = { localModelPath: modelsDir, allowRemoteModels: false, loader } as const;
    const byDefault = new LocalInference(local);
    const more = defaultIntraOpThreads() + 1;
    const other = new LocalInference({ ...local, intraOpThreads: more });
    const spinning = new LocalInference({ ...local, allowSpinning: true });

    await byDefault.load('feature-extraction', 'use-lite-en');
    await other.load('feature-extraction', 'use-lite-en');
    await spinning.load('feature-extraction', 'use-lite-en');
    await new LocalInference({ ...local, allowSpinning: false }).load(
      'feature-extraction',
      'use-lite-en',
    );

    expect(seen).toEqual([
      { dtype: 'fp32', intraOpThreads: defaultIntraOpThreads(), allowSpinning: false },
      { dtype: 'fp32', intraOpThreads: more, allowSpinning: false },
      { dtype: 'fp32', intraOpThreads: defaultIntraOpThreads(), allowSpinning: true },
    ]);
    expect([1, 2, 3, 4, 16].map((cores) => defaultIntraOpThreads(cores))).toEqual([1, 2, 2, 3, 15]);
  });

  it('refuses an intraOpThreads that is negative or not a whole number, naming it', () => {
    const local = { localModelPath: modelsDir, allowRemoteModels: false } as const;
    for (const intraOpThreads of [-1, 1.5, Number.NaN]) {
      expect(() => new LocalInference({ ...local, intraOpThreads })).toThrow(
        /intraOpThreads: expected a whole number, 0 or more/,
      );
    }
    expect(() => new LocalInference({ ...local, intraOpThreads: 0 })).not.toThrow();
    // A string from a JSON config or the environment shows quoted, not as the number it reads as.
    const fromJson = JSON.parse('{ "intraOpThreads": "2" }') as { intraOpThreads: number };
    expect(() => new LocalInference({ ...local, ...fromJson })).toThrow(
      /intraOpThreads: expected a whole number, 0 or more, got "2"$/,
    );
  });

  it('refuses an allowSpinning that is not true or false, naming it and what it got', () => {
    const local = { localModelPath: modelsDir, allowRemoteModels: false } as const;
    const found = (allowSpinning: unknown) => {
      try {
        new LocalInference({ ...local, allowSpinning: allowSpinning as boolean });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message.replace(
          'LocalInference allowSpinning: expected true or false, got ',
          '',
        );
      }
      throw new Error(`allowSpinning ${String(allowSpinning)} was taken`);
    };
    // As a JSON config or an environment variable would give them.
    expect(found('false')).toBe('"false"');
    expect(found(1)).toBe('1');
    expect(found(null)).toBe('null');
    expect(found(Number.NaN)).toBe('NaN');
    expect(found(1n)).toBe('1n');
    expect(found(Object.create(null))).toBe('an object');
    expect(found(new Boolean(false))).toBe('an object');
  });

  it('refuses a config that allows neither local nor remote models', () => {
    expect(() => new LocalInference({ allowRemoteModels: false })).toThrow(ConfigError);
  });

  it('never starts a load for an already-aborted request', async () => {
    const { loader, calls } = countingLoader();
    const client = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      loader,
    });
    const signal = AbortSignal.abort(new Error('gave up'));

    const call = client.featureExtraction({ model: 'use-lite-en', inputs: ['x'], signal });

    await expect(call).rejects.toThrow('gave up');
    expect(calls()).toBe(0);
  });
});
