/**
 * Measures what loading a model costs in resident memory: RSS with the inference package
 * imported, then the peak after loading the model and embedding one batch. Prints one JSON line.
 * Usage: model-rss-main.ts <model folder's parent> <model> <text file with one sentence a line>
 */
import { readFile } from 'node:fs/promises';
import { LocalInference } from '@warren/inference';
import { memoryOf } from '../proc-memory.ts';

const [modelPath, model, textFile] = process.argv.slice(2);
const texts = (await readFile(textFile!, 'utf-8')).split('\n').filter(Boolean);
const before = await memoryOf(process.pid);
const inference = new LocalInference({
  localModelPath: modelPath!,
  allowRemoteModels: false,
  dtype: 'fp32',
});
await inference.featureExtraction({
  model: model!,
  inputs: texts,
  pooling: 'cls',
  normalize: true,
});
const after = await memoryOf(process.pid);
process.stdout.write(`${JSON.stringify({ before, after })}\n`);
