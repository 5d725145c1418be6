export type { PipelineLoader, PipelineLoadOptions } from './default-loader.ts';
export { loadWithTransformers } from './default-loader.ts';
export type { LocalInferenceOptions, TooLongPolicy } from './local-inference.ts';
export { defaultIntraOpThreads, LocalInference } from './local-inference.ts';
export type { ThreadStartHook } from './model-thread.ts';
export type { RemoteInferenceOptions } from './remote-inference.ts';
export { RemoteInference } from './remote-inference.ts';
export type {
  BatchEncodingView,
  BatchTokenizeOptions,
  ModelConfigView,
  ModelView,
  PipelineTask,
  TensorView,
  TextPipeline,
  TokenizerView,
} from './text-pipeline.ts';
export type { ThreadLoaderOptions } from './thread-loader.ts';
export { createThreadLoader, loadInThread } from './thread-loader.ts';
