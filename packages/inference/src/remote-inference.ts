import {
  type Options as HfCallOptions,
  InferenceClient as HfInferenceClient,
  InferenceClientProviderApiError,
  InferenceClientProviderOutputError,
  type InferenceProviderOrPolicy,
  PROVIDERS_OR_POLICIES,
} from '@huggingface/inference';
import {
  type ClassificationLabel,
  ConfigError,
  type FeatureExtractionRequest,
  type InferenceClient,
  InferenceError,
  type LogSink,
  silentLogSink,
  type TextClassificationRequest,
} from '@warren/core';
import { checkTopK } from './labels.ts';
import { bestLabels, vectorsFromResponse } from './remote-shapes.ts';
import { normalizeVector } from './vectors.ts';

/** Options of {@link RemoteInference}. */
export interface RemoteInferenceOptions {
  /**
   * Send every call to this URL (a dedicated Inference Endpoint, a TEI server, any compatible
   * server) instead of routing by model id. Cannot be combined with `provider`.
   */
  endpointUrl?: string;
  /** Sent as `Authorization: Bearer <token>`; never logged. */
  accessToken?: string;
  /**
   * Inference provider to route to when there is no `endpointUrl` (`hf-inference`, `together`,
   * ... or `auto`); the library picks (`auto`) when unset. An unknown name is a `ConfigError`.
   */
  provider?: string;
  logger?: LogSink;
  /** The `fetch` to make requests with; the global one otherwise. */
  fetch?: typeof fetch;
}

type Task = 'feature-extraction' | 'text-classification';

/**
 * Runs models over HTTP with `@huggingface/inference`: on Hugging Face Inference Providers by
 * model id, or on one endpoint given by `endpointUrl`. A failed call (HTTP error, network error,
 * malformed response) becomes an `InferenceError` naming the HTTP status when there is one;
 * 503s are not retried here, that is the job's retry policy. An aborted signal cancels the
 * request and rejects with the signal's reason.
 */
export class RemoteInference implements InferenceClient {
  readonly #client: HfInferenceClient;
  readonly #provider: InferenceProviderOrPolicy | undefined;
  readonly #fetch: typeof fetch | undefined;
  readonly #logger: LogSink;

  constructor(options: RemoteInferenceOptions = {}) {
    const { endpointUrl, accessToken = '', provider } = options;
    if (endpointUrl !== undefined && provider !== undefined) {
      throw new ConfigError('RemoteInference takes endpointUrl or provider, not both');
    }
    this.#client = new HfInferenceClient(accessToken, endpointUrl ? { endpointUrl } : {});
    this.#provider = provider === undefined ? undefined : knownProvider(provider);
    this.#fetch = options.fetch;
    this.#logger = options.logger ?? silentLogSink;
  }

  /**
   * One vector per input, in order, from one request. The endpoint pools; `pooling` applies only
   * when it returns token vectors. `normalize` is sent along and also applied here, so it holds
   * whatever the endpoint does with it. Empty `inputs` resolve to `[]` without a request.
   */
  async featureExtraction(request: FeatureExtractionRequest): Promise<number[][]> {
    const { model, inputs, pooling = 'mean', normalize, signal } = request;
    if (inputs.length === 0) return [];

    const response = await this.#call('feature-extraction', model, inputs.length, signal, () =>
      this.#client.featureExtraction(
        { model, inputs, ...this.#routing(), ...(normalize === undefined ? {} : { normalize }) },
        this.#callOptions(signal),
      ),
    );

    let vectors: number[][];
    try {
      vectors = vectorsFromResponse(response, inputs.length, pooling);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new InferenceError(
        `Remote feature-extraction for "${model}" returned an unexpected shape: ${reason}`,
        { cause: error },
      );
    }
    return normalize ? vectors.map(normalizeVector) : vectors;
  }

  /**
   * The `topK` (default 1) best labels per input, best first. The text-classification API takes
   * one text per request, so this makes one request per input, all at once; the first failure
   * rejects the call.
   */
  async textClassification(request: TextClassificationRequest): Promise<ClassificationLabel[][]> {
    const { model, inputs, signal } = request;
    const topK = checkTopK(request.topK);
    if (inputs.length === 0) return [];

    return this.#call('text-classification', model, inputs.length, signal, () =>
      Promise.all(
        inputs.map(async (text) => {
          const labels = await this.#client.textClassification(
            { model, inputs: text, parameters: { top_k: topK }, ...this.#routing() },
            this.#callOptions(signal),
          );
          return bestLabels(labels, topK);
        }),
      ),
    );
  }

  /** Run `work`, timing it and turning its failure into a Warren error. */
  async #call<T>(
    task: Task,
    model: string,
    inputCount: number,
    signal: AbortSignal | undefined,
    work: () => Promise<T>,
  ): Promise<T> {
    signal?.throwIfAborted();
    const started = performance.now();

    try {
      const result = await work();
      const ms = Math.round(performance.now() - started);
      this.#logger.debug({ task, model, inputs: inputCount, ms }, 'remote inference done');
      return result;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const failure = toInferenceError(task, model, error);
      this.#logger.warn({ task, model, reason: failure.message }, 'remote inference failed');
      throw failure;
    }
  }

  #routing(): { provider?: InferenceProviderOrPolicy } {
    return this.#provider === undefined ? {} : { provider: this.#provider };
  }

  #callOptions(signal: AbortSignal | undefined): HfCallOptions {
    return {
      retry_on_error: false,
      ...(signal ? { signal } : {}),
      ...(this.#fetch ? { fetch: this.#fetch } : {}),
    };
  }
}

function knownProvider(name: string): InferenceProviderOrPolicy {
  const known = PROVIDERS_OR_POLICIES.find((provider) => provider === name);
  if (known === undefined) {
    throw new ConfigError(
      `RemoteInference provider: expected one of ${PROVIDERS_OR_POLICIES.join(', ')}, got "${name}"`,
    );
  }
  return known;
}

function toInferenceError(task: Task, model: string, error: unknown): InferenceError {
  const reason = error instanceof Error ? error.message : String(error);
  const what = `Remote ${task} for "${model}"`;

  if (error instanceof InferenceClientProviderApiError) {
    const status = error.httpResponse.status;
    return new InferenceError(`${what} failed with HTTP ${status}: ${reason}`, { cause: error });
  }
  if (error instanceof InferenceClientProviderOutputError) {
    return new InferenceError(`${what} returned a malformed response: ${reason}`, { cause: error });
  }
  const cause =
    error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return new InferenceError(`${what} failed: ${reason}${cause}`, { cause: error });
}
