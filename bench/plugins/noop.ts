import { defineHandler } from '@warren/core';
import { z } from 'zod';

const RESULT = Object.freeze({ ok: true });

/** Does nothing and returns a constant: what is left is the runtime's own cost per job. */
export default defineHandler({
  name: 'bench-noop',
  modelType: 'bench-noop',
  input: z.object({ text: z.string() }),
  async handle() {
    return RESULT;
  },
});
