import { type Attributes, context, type Span, SpanKind, trace } from '@opentelemetry/api';
import type { InferenceClient } from './inference.ts';
import { instruments } from './telemetry-metrics.ts';
import { ATTR, GEN_AI_OPERATION, GEN_AI_PROVIDER, SPAN_NAMES } from './telemetry-names.ts';
import {
  activeTracer,
  errorType,
  failSpan,
  guarded,
  runInContext,
  telemetryFailed,
} from './trace-propagation.ts';

/**
 * Wraps an inference client so that each call is a span (kind CLIENT, `embeddings <model>` or
 * `text_classification <model>`) with the GenAI conventions' attributes, and its duration is
 * recorded on `gen_ai.client.operation.duration`. The span's parent is the active context: a
 * handler runs inside its `handle` span, so its calls nest there (or under a span of its own).
 * Token counts are not recorded: the client does not report them.
 */
export function instrumentInference(client: InferenceClient): InferenceClient {
  return {
    featureExtraction: (request) =>
      observing()
        ? observed(
            GEN_AI_OPERATION.featureExtraction,
            request,
            () => client.featureExtraction(request),
            describeEmbeddings,
          )
        : client.featureExtraction(request),
    textClassification: (request) =>
      observing()
        ? observed(GEN_AI_OPERATION.textClassification, request, () =>
            client.textClassification(request),
          )
        : client.textClassification(request),
  };
}

/** Whether anyone listens: with no SDK registered, calls go straight to the client. */
function observing(): boolean {
  try {
    return !instruments().noop || activeTracer() !== undefined;
  } catch (error) {
    telemetryFailed('inference metrics', error);
    return false;
  }
}

function describeEmbeddings(vectors: number[][], span: Span): void {
  const dimensions = vectors[0]?.length;
  if (dimensions !== undefined) span.setAttribute(ATTR.genAiEmbeddingsDimensionCount, dimensions);
}

/** What the wrapper reads of a request. */
interface Request {
  model: string;
  inputs: readonly string[];
}

async function observed<T>(
  operation: string,
  request: Request,
  call: () => Promise<T>,
  describe?: (result: T, span: Span) => void,
): Promise<T> {
  const started = performance.now();
  const span = startSpan(operation, request);
  let failure: unknown;
  let failed = false;
  try {
    const result = await (span === undefined
      ? call()
      : runInContext(trace.setSpan(context.active(), span), call));
    if (span !== undefined && describe !== undefined) {
      guarded('inference span', () => describe(result, span));
    }
    return result;
  } catch (error) {
    failed = true;
    failure = error;
    throw error;
  } finally {
    const type = failed ? errorType(failure) : undefined;
    guarded('inference metrics', () => {
      const seconds = (performance.now() - started) / 1000;
      const attributes = durationAttributes(operation, request.model, type);
      instruments().inferenceDuration.record(seconds, attributes);
    });
    if (span !== undefined) {
      guarded('inference span', () => {
        if (failed) failSpan(span, failure, type);
        span.end();
      });
    }
  }
}

function startSpan(operation: string, { model, inputs }: Request): Span | undefined {
  const tracer = activeTracer();
  if (tracer === undefined) return undefined;
  try {
    return tracer.startSpan(SPAN_NAMES.inference(operation, model), {
      kind: SpanKind.CLIENT,
      attributes: {
        [ATTR.genAiOperationName]: operation,
        [ATTR.genAiProviderName]: GEN_AI_PROVIDER,
        [ATTR.genAiRequestModel]: model,
        [ATTR.inferenceBatchSize]: inputs.length,
      },
    });
  } catch (error) {
    telemetryFailed('inference span', error);
    return undefined;
  }
}

/** Made once per operation, model and error type (models are configured, so few). */
const attributeSets = new Map<string, Attributes>();
/** Past this many, sets are made per call rather than kept: a handler naming models freely. */
const MAX_ATTRIBUTE_SETS = 256;

function durationAttributes(operation: string, model: string, type: string | undefined) {
  const key = `${operation}\n${model}\n${type ?? ''}`;
  let attributes = attributeSets.get(key);
  if (attributes === undefined) {
    attributes = {
      [ATTR.genAiOperationName]: operation,
      [ATTR.genAiProviderName]: GEN_AI_PROVIDER,
      [ATTR.genAiRequestModel]: model,
    };
    if (type !== undefined) attributes[ATTR.errorType] = type;
    if (attributeSets.size < MAX_ATTRIBUTE_SETS) attributeSets.set(key, attributes);
  }
  return attributes;
}
