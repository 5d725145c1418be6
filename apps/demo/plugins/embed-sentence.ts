import { defineHandler } from '@warren/core';
import { z } from 'zod';

/**
 * Embeds one sentence with a sentence encoder. The worker config chooses the model; the
 * defaults fit use-lite-en, whose output is one vector per input (hence `cls` pooling).
 */
export default defineHandler({
  name: 'embed-sentence',
  modelType: 'sentence-embedding',
  input: z.object({ text: z.string().min(1).max(20_000) }),
  options: z
    .object({
      model: z.string().min(1).default('use-lite-en'),
      pooling: z.enum(['cls', 'mean']).default('cls'),
    })
    .strict(),

  async setup({ inference, options }) {
    await inference.featureExtraction({
      model: options.model,
      inputs: ['warm up'],
      pooling: options.pooling,
    });
  },

  // One model call for a batch of sentences: the model runs a batch much faster than one by one.
  batch: { maxSize: 32, maxWaitMs: 5 },
  async handleBatch(inputs, { inference, options, signal }) {
    const embeddings = await inference.featureExtraction({
      model: options.model,
      inputs: inputs.map(({ text }) => text),
      pooling: options.pooling,
      normalize: true,
      signal,
    });
    return embeddings.map((embedding) => ({ embedding }));
  },
});
