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
});
