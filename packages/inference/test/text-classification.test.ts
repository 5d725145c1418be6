import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ClassificationLabel, InferenceError, InputTooLongError } from '@warren/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalInference,
  loadWithTransformers,
  type PipelineLoader,
  type TextPipeline,
} from '../src/index.ts';
import { modelsDir } from './fixtures/shared-assets.ts';
import {
  expectedLogits,
  TINY_CLASSIFIER,
  writeTinyClassifier,
} from './fixtures/tiny-classifier.ts';

const model = 'tiny-classifier';
const inputs = ['A girl is styling her hair.', 'hi', 'The quick brown fox jumps over the lazy dog'];

/** The labels the tiny classifier should give for `text`, computed without ONNX. */
function expectedLabels(pipeline: TextPipeline, text: string): ClassificationLabel[] {
  const encoded = pipeline.tokenizer.encodeBatch([text], {
    padding: true,
    truncation: true,
    max_length: 512,
  });
  const ids = Array.from(encoded.input_ids.data, Number);
  const logits = expectedLogits(ids);
  const exps = logits.map((value) => Math.exp(value));
  const total = exps.reduce((sum, value) => sum + value, 0);

  return exps
    .map((value, index) => ({ label: TINY_CLASSIFIER.labels[index] ?? '', score: value / total }))
    .sort((a, b) => b.score - a.score);
}

describe('LocalInference.textClassification with a generated tiny ONNX classifier', () => {
  let scratch: string;
  let loaded: TextPipeline | undefined;
  /** Loads with transformers.js and keeps the pipeline, so the test can read its tokenizer. */
  const keepingLoader: PipelineLoader = async (task, name, options) => {
    loaded = await loadWithTransformers(task, name, options);
    return loaded;
  };
  let client: LocalInference;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'warren-classifier-'));
    await writeTinyClassifier(scratch, model, path.join(modelsDir, 'use-lite-en'));
    client = new LocalInference({
      localModelPath: scratch,
      allowRemoteModels: false,
      loader: keepingLoader,
    });
    await client.load('text-classification', model);
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('returns all labels, best first, with the scores the weights imply', async () => {
    const results = await client.textClassification({ model, inputs, topK: 3 });

    expect(results).toHaveLength(inputs.length);
    results.forEach((labels, i) => {
      const expected = expectedLabels(loaded!, inputs[i] ?? '');
      expect(labels.map((entry) => entry.label)).toEqual(expected.map((entry) => entry.label));
      labels.forEach((entry, k) => {
        expect(entry.score).toBeCloseTo(expected[k]?.score ?? 0, 5);
      });
    });
  });

  it('returns the single best label per input by default', async () => {
    const results = await client.textClassification({ model, inputs });

    expect(results.map((labels) => labels.length)).toEqual([1, 1, 1]);
    expect(results.map((labels) => labels[0]?.label)).toEqual(
      inputs.map((text) => expectedLabels(loaded!, text)[0]?.label),
    );
  });

  it('gives an input the same labels alone as in a padded batch', async () => {
    const [batched] = (await client.textClassification({ model, inputs, topK: 3 })).slice(1, 2);
    const [alone] = await client.textClassification({ model, inputs: ['hi'], topK: 3 });

    expect(alone?.map((entry) => entry.label)).toEqual(batched?.map((entry) => entry.label));
    alone?.forEach((entry, k) => {
      expect(entry.score).toBeCloseTo(batched?.[k]?.score ?? 0, 6);
    });
  });

  it('caps topK at the number of labels', async () => {
    const [labels] = await client.textClassification({ model, inputs: ['hi'], topK: 10 });

    expect(labels).toHaveLength(TINY_CLASSIFIER.labels.length);
  });

  it('rejects a topK that is not a positive whole number', async () => {
    await expect(client.textClassification({ model, inputs: ['hi'], topK: 0 })).rejects.toThrow(
      InferenceError,
    );
  });

  it('refuses over-long inputs here too when set to refuse', async () => {
    const strict = new LocalInference({
      localModelPath: scratch,
      allowRemoteModels: false,
      loader: keepingLoader,
      onTooLong: 'refuse',
    });

    const call = strict.textClassification({ model, inputs: ['word '.repeat(4000)] });

    await expect(call).rejects.toBeInstanceOf(InputTooLongError);
  });
});
