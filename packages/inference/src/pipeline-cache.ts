import type { DataType } from '@huggingface/transformers';
import { type LogSink, ModelLoadError } from '@warren/core';
import { type PipelineLoader, transformers } from './default-loader.ts';
import type { PipelineTask, TextPipeline } from './text-pipeline.ts';
import type { LoadEnv } from './thread-protocol.ts';

/** Where and how a model is loaded from; part of the cache key. */
export interface ModelSource {
  /** Folder holding one sub-folder per model; local loading is off without it. */
  localModelPath?: string;
  allowRemoteModels: boolean;
  cacheDir?: string;
  dtype: DataType;
  /** ONNX Runtime's threads per run of the model; 0 leaves the count to ONNX Runtime. */
  intraOpThreads: number;
  /** Whether ONNX Runtime's threads spin while they wait for work. */
  allowSpinning: boolean;
}

/** What transformers.js's `env` held before Warren first changed it. */
let envDefaults: { localModelPath: string; cacheDir: string | null } | undefined;

/** A load in flight or done, and the clients that asked for it and have not let go. */
interface CacheEntry {
  task: PipelineTask;
  model: string;
  loading: Promise<TextPipeline>;
  holders: Set<object>;
}

/**
 * Loads in flight or done, per loader, keyed by task, model, dtype and source. Module-level on
 * purpose: a process loads each model once, however many clients ask for it. Keyed per loader so
 * an injected test loader starts from an empty cache.
 */
const caches = new WeakMap<PipelineLoader, Map<string, CacheEntry>>();

/** The tail of the chain of loads; each waits for the one before it. */
let loadQueue: Promise<unknown> = Promise.resolve();

/**
 * The pipeline for `task` and `model`, loaded at most once per process and source, and held for
 * `holder` until {@link releasePipelines}. Concurrent first callers share one load. A failed load
 * is evicted, so a later call tries again, and rejects with a {@link ModelLoadError} naming the
 * model and the cause.
 */
export function loadPipeline(
  loader: PipelineLoader,
  task: PipelineTask,
  model: string,
  source: ModelSource,
  logger: LogSink,
  holder: object,
): Promise<TextPipeline> {
  const cache = cacheFor(loader);
  const key = JSON.stringify([
    task,
    model,
    source.dtype,
    source.intraOpThreads,
    source.allowSpinning,
    source.localModelPath ?? null,
    source.allowRemoteModels,
    source.cacheDir ?? null,
  ]);
  const cached = cache.get(key);
  if (cached) {
    cached.holders.add(holder);
    return cached.loading;
  }

  const loading = serialised(() => loadNow(loader, task, model, source, logger));
  const entry: CacheEntry = { task, model, loading, holders: new Set([holder]) };
  cache.set(key, entry);
  loading.catch(() => {
    if (cache.get(key) === entry) cache.delete(key);
  });
  return loading;
}

/**
 * Let go of every pipeline `holder` loaded through `loader`. One that no other holder keeps is
 * evicted and disposed (its thread stopped, its sessions freed); a later call loads it again.
 */
export async function releasePipelines(
  loader: PipelineLoader,
  holder: object,
  logger: LogSink,
): Promise<void> {
  const cache = caches.get(loader);
  if (!cache) return;

  const unused: CacheEntry[] = [];
  for (const [key, entry] of cache) {
    if (!entry.holders.delete(holder) || entry.holders.size > 0) continue;
    cache.delete(key);
    unused.push(entry);
  }

  await Promise.all(
    unused.map(async ({ task, model, loading }) => {
      const pipeline = await loading.catch(() => undefined);
      await pipeline?.dispose?.();
      if (pipeline) logger.info({ task, model }, 'model unloaded');
    }),
  );
}

async function loadNow(
  loader: PipelineLoader,
  task: PipelineTask,
  model: string,
  source: ModelSource,
  logger: LogSink,
): Promise<TextPipeline> {
  const { dtype, intraOpThreads, allowSpinning } = source;
  const fields = {
    task,
    model,
    dtype,
    intraOpThreads,
    allowSpinning,
    from: describeSource(source),
  };
  const started = performance.now();
  logger.debug(fields, 'model loading');

  try {
    await applyEnv(source);
    const loaded = await loader(task, model, { dtype, intraOpThreads, allowSpinning });
    logger.info({ ...fields, ms: Math.round(performance.now() - started) }, 'model loaded');
    return loaded;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    logger.warn({ ...fields, reason }, 'model load failed');
    throw new ModelLoadError(
      `Could not load model "${model}" for ${task} from ${describeSource(source)}: ${reason}`,
      { cause: error },
    );
  }
}

/**
 * transformers.js reads its settings from one process-global `env` while it loads, so the
 * settings of this load are written just before it and loads run one at a time: two clients
 * with different settings cannot interleave. A model thread has an `env` of its own; the thread
 * loader copies these same settings into it.
 */
async function applyEnv(source: ModelSource): Promise<void> {
  const { env } = await transformers();
  envDefaults ??= { localModelPath: env.localModelPath, cacheDir: env.cacheDir };
  const settings: LoadEnv = {
    allowLocalModels: source.localModelPath !== undefined,
    localModelPath: source.localModelPath ?? envDefaults.localModelPath,
    allowRemoteModels: source.allowRemoteModels,
    cacheDir: source.cacheDir ?? envDefaults.cacheDir,
  };
  Object.assign(env, settings);
}

function serialised<T>(work: () => Promise<T>): Promise<T> {
  const run = loadQueue.then(work);
  loadQueue = run.catch(() => undefined);
  return run;
}

function cacheFor(loader: PipelineLoader): Map<string, CacheEntry> {
  let cache = caches.get(loader);
  if (!cache) {
    cache = new Map();
    caches.set(loader, cache);
  }
  return cache;
}

function describeSource(source: ModelSource): string {
  const local = source.localModelPath ?? 'no local folder';
  return source.allowRemoteModels ? `${local} or the hub` : local;
}
