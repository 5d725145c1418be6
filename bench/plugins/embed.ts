import { defineHandler } from '@warren/core';
import { z } from 'zod';

/**
 * Embeds sentences with a sentence encoder, one job at a time (`handle`) or a batch of jobs in
 * one model call (`handleBatch`). The worker config's `batch` decides which the consumer uses.
 */
export default defineHandler({
  name: 'bench-embed',
  modelType: 'bench-embed',
  input: z.object({ text: z.string().min(1) }),
  options: z
    .object({
      model: z.string().min(1).default('use-lite-en'),
      pooling: z.enum(['cls', 'mean']).default('cls'),
    })
    .strict(),
  batch: { maxSize: 32, maxWaitMs: 5 },

  async setup({ inference, options }) {
    await inference.featureExtraction({
      model: options.model,
      inputs: ['warm up'],
      pooling: options.pooling,
    });
  },

  async handle({ text }, { inference, options, signal }) {
    const [embedding] = await inference.featureExtraction({
      model: options.model,
      inputs: [text],
      pooling: options.pooling,
      normalize: true,
      signal,
    });
    return { embedding };
  },

  async handleBatch(inputs, { inference, options, signal }) {
    const embeddings = await inference.featureExtraction({
      model: options.model,
      inputs: inputs.map((input) => input.text),
      pooling: options.pooling,
      normalize: true,
      signal,
    });
    return embeddings.map((embedding) => ({ embedding }));
  },
});
