/**
 * Measures the live heap a running worker keeps per job: a worker (no-op plugin) in this process
 * drains a warm-up batch of jobs, then more, and the heap is read after a forced collection at
 * each point. Run with `node --expose-gc --import tsx`. Prints one JSON line.
 * Usage: heap-main.ts <models folder> <prefetch> <warm-up jobs> <measured jobs> <dedupe store>
 */
import { parseConfig, Worker } from '@warren/worker';
import { pino } from 'pino';
import { BenchBroker, paddedInput } from '../broker.ts';
import { finished, until, workerConfig } from '../warren-run.ts';

const [modelPath, prefetch, warmUp, measured, store] = process.argv.slice(2);
const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) throw new Error('run with node --expose-gc');

const broker = new BenchBroker();
try {
  const results = await broker.declare('bench-noop', 'noop-results');
  const config = workerConfig(broker, {
    plugin: 'noop.js',
    prefetch: Number(prefetch),
    modelPath: modelPath!,
  });
  const worker = await Worker.start({
    config: parseConfig({ ...config, dedupe: { store } }, process.cwd()),
    logger: pino({ level: 'warn' }, pino.destination(2)),
    transport: broker.transport('warren-bench-heap'),
    env: {},
  });
  const consumer = worker.consumers[0]!.consumer;
  const heapAfter = async (jobs: number): Promise<number> => {
    // Counted before filling: the worker takes jobs while the fill is still publishing.
    const target = finished(consumer.counts) + jobs;
    await broker.fill('bench-noop', jobs, () => paddedInput(100), results);
    await until(() => finished(consumer.counts) >= target, 2, 120_000);
    await broker.purge(results);
    collect();
    collect();
    return process.memoryUsage().heapUsed;
  };
  const before = await heapAfter(Number(warmUp));
  const after = await heapAfter(Number(measured));
  await worker.stop();
  process.stdout.write(`${JSON.stringify({ before, after, jobs: Number(measured) })}\n`);
} finally {
  await broker.cleanUp();
}
