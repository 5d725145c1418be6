// Written in JavaScript, as a plugin shipped to production would be: the worker binary loads it
// without a TypeScript loader, so figure 4 measures the worker's memory alone.
import { defineHandler } from '@warren/core';
import { z } from 'zod';

const RESULT = Object.freeze({ ok: true });

/**
 * Does nothing and returns a constant: what is left is the runtime's own cost per job. Jobs with
 * a reply-to queue get the constant as their result; the others only an ack.
 */
export default defineHandler({
  name: 'bench-noop',
  modelType: 'bench-noop',
  input: z.object({ text: z.string() }),
  results: 'reply-to-only',
  async handle() {
    return RESULT;
  },
});
