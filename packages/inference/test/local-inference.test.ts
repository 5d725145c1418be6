import { InferenceError, InputTooLongError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { LocalInference } from '../src/index.ts';
import { cosine, length, modelsDir, readStsPairs } from './fixtures/shared-assets.ts';

const model = 'use-lite-en';
/** 20,000 characters, 4,001 tokens for use-lite-en's tokenizer. */
const longInput = 'word '.repeat(4000);

describe('LocalInference.featureExtraction with use-lite-en', () => {
  const client = new LocalInference({ localModelPath: modelsDir, allowRemoteModels: false });

  it('reproduces the reference cosines of the first three STS-B pairs', async () => {
    const pairs = await readStsPairs(3);
    const inputs = pairs.flatMap((pair) => [pair.sentence1, pair.sentence2]);

    const vectors = await client.featureExtraction({ model, inputs, pooling: 'cls' });

    const cosines = pairs.map((_, i) => cosine(vectors[2 * i] ?? [], vectors[2 * i + 1] ?? []));
    expect(cosines[0]).toBeCloseTo(0.749178, 5);
    expect(cosines[1]).toBeCloseTo(0.918227, 5);
    expect(cosines[2]).toBeCloseTo(0.863837, 5);
  });

  it('returns one 512-d unit-length vector per input, in order', async () => {
    const inputs = ['A girl is styling her hair.', 'hi', 'A group of men play soccer.'];

    const batched = await client.featureExtraction({ model, inputs, pooling: 'cls' });
    const alone = await client.featureExtraction({ model, inputs: ['hi'], pooling: 'cls' });

    expect(batched).toHaveLength(3);
    for (const vector of batched) {
      expect(vector).toHaveLength(512);
      expect(length(vector)).toBeCloseTo(1, 5);
    }
    expect(cosine(batched[1] ?? [], alone[0] ?? [])).toBeCloseTo(1, 6);
  });

  it('normalizes to unit length when asked', async () => {
    const [vector = []] = await client.featureExtraction({
      model,
      inputs: ['Normalise me.'],
      pooling: 'mean',
      normalize: true,
    });

    expect(vector).toHaveLength(512);
    expect(length(vector)).toBeCloseTo(1, 6);
  });

  it('resolves empty inputs to an empty list', async () => {
    await expect(client.featureExtraction({ model, inputs: [] })).resolves.toEqual([]);
  });

  it('rejects with the signal reason when the signal is already aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('deadline passed');
    controller.abort(reason);

    const call = client.featureExtraction({ model, inputs: ['x'], signal: controller.signal });

    await expect(call).rejects.toBe(reason);
  });
});

describe('LocalInference with inputs over the token limit', () => {
  it('refuses a 20,000-character input naming its index, token count and the limit', async () => {
    const client = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      onTooLong: 'refuse',
    });

    const call = client.featureExtraction({ model, inputs: ['short', longInput], pooling: 'cls' });

    await expect(call).rejects.toBeInstanceOf(InputTooLongError);
    await expect(call).rejects.toThrow(
      'Input 1 is 4001 tokens long; model "use-lite-en" accepts at most 512',
    );
  });

  it('embeds a short input with the same client after refusing a long one', async () => {
    const client = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      onTooLong: 'refuse',
    });
    await expect(client.featureExtraction({ model, inputs: [longInput] })).rejects.toThrow(
      InputTooLongError,
    );

    const vectors = await client.featureExtraction({ model, inputs: ['short'], pooling: 'cls' });

    expect(vectors[0]).toHaveLength(512);
  });

  it('truncates a 20,000-character input and returns a 512-d vector', async () => {
    const client = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      onTooLong: 'truncate',
    });

    const [vector = []] = await client.featureExtraction({
      model,
      inputs: [longInput],
      pooling: 'cls',
    });

    expect(vector).toHaveLength(512);
    expect(vector.every(Number.isFinite)).toBe(true);
    expect(length(vector)).toBeCloseTo(1, 5);
  });

  it('truncates at maxInputTokens, so inputs that share their first tokens embed alike', async () => {
    const inputs = ['A girl is styling her hair.', 'A girl is styling a dog on the beach.'];
    const clipped = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      maxInputTokens: 4,
    });
    const full = new LocalInference({ localModelPath: modelsDir, allowRemoteModels: false });

    const [a = [], b = []] = await clipped.featureExtraction({ model, inputs, pooling: 'cls' });
    const [c = [], d = []] = await full.featureExtraction({ model, inputs, pooling: 'cls' });

    expect(cosine(a, b)).toBeCloseTo(1, 6);
    expect(cosine(c, d)).toBeLessThan(0.99);
  });

  it('refuses at maxInputTokens when it is below the tokenizer limit', async () => {
    const client = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      onTooLong: 'refuse',
      maxInputTokens: 4,
    });

    const call = client.featureExtraction({ model, inputs: ['A girl is styling her hair.'] });

    await expect(call).rejects.toThrow(
      'Input 0 is 9 tokens long; model "use-lite-en" accepts at most 4',
    );
  });
});

describe('LocalInference when the model call throws', () => {
  it('rejects with InferenceError carrying the cause', async () => {
    const failure = new Error('ONNX session exploded');
    const client = new LocalInference({
      localModelPath: modelsDir,
      allowRemoteModels: false,
      loader: async () => ({
        tokenizer: {
          encodeBatch: () => {
            const tensor = { dims: [1, 1], data: [1] };
            return { input_ids: tensor, attention_mask: tensor };
          },
          countTokens: () => 1,
          modelMaxLength: 512,
        },
        model: {
          run: async () => {
            throw failure;
          },
          config: {},
        },
      }),
    });

    const call = client.featureExtraction({ model: 'any', inputs: ['x'] });

    await expect(call).rejects.toBeInstanceOf(InferenceError);
    await expect(call).rejects.toMatchObject({
      code: 'WARREN_INFERENCE_FAILED',
      message: 'Model "any" failed: ONNX session exploded',
      cause: failure,
    });
  });
});
