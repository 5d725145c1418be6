import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, InferenceError } from '@warren/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RemoteInference, type RemoteInferenceOptions } from '../src/index.ts';

/** A request as the test server saw it. */
interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

type Reply = (body: unknown) => { status: number; json?: unknown; text?: string; delayMs?: number };

let server: Server;
let base: string;
let seen: Seen[] = [];
let reply: Reply = () => ({ status: 200, json: [] });
/** Every URL the client fetched; each must be on the loopback server. */
const fetched: URL[] = [];

const recordingFetch: typeof fetch = (input, init) => {
  fetched.push(new URL(input instanceof Request ? input.url : String(input)));
  return fetch(input, init);
};

function client(options: RemoteInferenceOptions = {}): RemoteInference {
  return new RemoteInference({ endpointUrl: `${base}/embed`, fetch: recordingFetch, ...options });
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  let raw = '';
  for await (const chunk of request) raw += String(chunk);
  const body: unknown = raw === '' ? undefined : JSON.parse(raw);
  seen.push({
    method: request.method ?? '',
    path: request.url ?? '',
    authorization: request.headers.authorization,
    body,
  });

  const { status, json, text, delayMs = 0 } = reply(body);
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  if (response.destroyed) return;
  if (text !== undefined) {
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
  } else {
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
  }
}

beforeAll(async () => {
  server = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

afterEach(() => {
  for (const url of fetched) expect(url.hostname).toBe('127.0.0.1');
  fetched.length = 0;
  seen = [];
});

describe('RemoteInference.featureExtraction against a loopback endpoint', () => {
  it('posts the inputs to the endpoint URL with the bearer token and maps the vectors', async () => {
    reply = () => ({
      status: 200,
      json: [
        [3, 4],
        [0, 2],
      ],
    });

    const vectors = await client({ accessToken: 'hf_test_token' }).featureExtraction({
      model: 'some/model',
      inputs: ['first', 'second'],
    });

    expect(vectors).toEqual([
      [3, 4],
      [0, 2],
    ]);
    expect(seen).toEqual([
      {
        method: 'POST',
        path: '/embed',
        authorization: 'Bearer hf_test_token',
        body: { inputs: ['first', 'second'] },
      },
    ]);
  });

  it('sends no Authorization header without a token', async () => {
    reply = () => ({ status: 200, json: [[1, 0]] });

    await client().featureExtraction({ model: 'm', inputs: ['x'] });

    expect(seen[0]?.authorization).toBeUndefined();
  });

  it('maps a flat vector for a single input', async () => {
    reply = () => ({ status: 200, json: [1, 2, 3] });

    const vectors = await client().featureExtraction({ model: 'm', inputs: ['only'] });

    expect(vectors).toEqual([[1, 2, 3]]);
  });

  it('pools token vectors when the endpoint returns them', async () => {
    const tokens = [
      [
        [1, 2],
        [3, 4],
      ],
      [
        [5, 6],
        [7, 8],
      ],
    ];
    reply = () => ({ status: 200, json: tokens });

    const mean = await client().featureExtraction({ model: 'm', inputs: ['a', 'b'] });
    const cls = await client().featureExtraction({
      model: 'm',
      inputs: ['a', 'b'],
      pooling: 'cls',
    });

    expect(mean).toEqual([
      [2, 3],
      [6, 7],
    ]);
    expect(cls).toEqual([
      [1, 2],
      [5, 6],
    ]);
  });

  it('sends normalize along and normalizes the vectors it gets', async () => {
    reply = () => ({ status: 200, json: [[3, 4]] });

    const vectors = await client().featureExtraction({
      model: 'm',
      inputs: ['x'],
      normalize: true,
    });

    expect(seen[0]?.body).toEqual({ inputs: ['x'], normalize: true });
    expect(vectors[0]?.[0]).toBeCloseTo(0.6, 10);
    expect(vectors[0]?.[1]).toBeCloseTo(0.8, 10);
  });

  it('rejects a response with the wrong number of vectors as InferenceError', async () => {
    reply = () => ({ status: 200, json: [[1, 2]] });

    const call = client().featureExtraction({ model: 'm', inputs: ['a', 'b', 'c'] });

    await expect(call).rejects.toBeInstanceOf(InferenceError);
    await expect(call).rejects.toThrow('expected 3 vector(s)');
  });

  it('makes no request for empty inputs', async () => {
    await expect(client().featureExtraction({ model: 'm', inputs: [] })).resolves.toEqual([]);
    expect(seen).toEqual([]);
  });
});

describe('RemoteInference.textClassification against a loopback endpoint', () => {
  it('asks once per input with top_k and maps the labels, best first', async () => {
    reply = (body) => {
      const good =
        typeof body === 'object' && body !== null && Reflect.get(body, 'inputs') === 'good';
      const positive = good ? 0.9 : 0.2;
      return {
        status: 200,
        json: [
          [
            { label: 'NEGATIVE', score: 1 - positive },
            { label: 'POSITIVE', score: positive },
          ],
        ],
      };
    };

    const results = await client({ accessToken: 'hf_x' }).textClassification({
      model: 'm',
      inputs: ['good', 'bad'],
      topK: 2,
    });

    expect(results).toEqual([
      [
        { label: 'POSITIVE', score: 0.9 },
        { label: 'NEGATIVE', score: expect.closeTo(0.1, 10) },
      ],
      [
        { label: 'NEGATIVE', score: 0.8 },
        { label: 'POSITIVE', score: 0.2 },
      ],
    ]);
    expect(seen.map((request) => request.body)).toEqual(
      expect.arrayContaining([
        { inputs: 'good', parameters: { top_k: 2 } },
        { inputs: 'bad', parameters: { top_k: 2 } },
      ]),
    );
    expect(seen.every((request) => request.authorization === 'Bearer hf_x')).toBe(true);
  });

  it('keeps only topK labels even when the endpoint returns more', async () => {
    reply = () => ({
      status: 200,
      json: [
        [
          { label: 'a', score: 0.5 },
          { label: 'b', score: 0.3 },
          { label: 'c', score: 0.2 },
        ],
      ],
    });

    const results = await client().textClassification({ model: 'm', inputs: ['x'] });

    expect(results).toEqual([[{ label: 'a', score: 0.5 }]]);
  });
});

describe('RemoteInference failures', () => {
  it('turns a response of the wrong shape into InferenceError', async () => {
    reply = () => ({ status: 200, json: { labels: ['a'] } });

    const call = client().textClassification({ model: 'm', inputs: ['x'] });

    await expect(call).rejects.toBeInstanceOf(InferenceError);
    await expect(call).rejects.toThrow('returned a malformed response');
  });

  it('turns a 503 into InferenceError naming the status, without retrying', async () => {
    reply = () => ({ status: 503, json: { error: 'Model is loading' } });

    const call = client().featureExtraction({ model: 'm', inputs: ['x'] });

    await expect(call).rejects.toBeInstanceOf(InferenceError);
    await expect(call).rejects.toThrow(/HTTP 503.*Model is loading/);
    expect(seen).toHaveLength(1);
  });

  it('turns a 4xx with a plain-text body into InferenceError naming the status', async () => {
    reply = () => ({ status: 413, text: 'input too large' });

    const call = client().textClassification({ model: 'm', inputs: ['x'] });

    await expect(call).rejects.toThrow(/HTTP 413: .*input too large/);
  });

  it('turns a connection failure into InferenceError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = new RemoteInference({
      endpointUrl: `http://127.0.0.1:${port}/embed`,
      fetch: recordingFetch,
    });

    const call = unreachable.featureExtraction({ model: 'm', inputs: ['x'] });

    await expect(call).rejects.toBeInstanceOf(InferenceError);
    await expect(call).rejects.toThrow(/failed: fetch failed: .*ECONNREFUSED/);
  });

  it('passes the abort signal through and rejects with its reason', async () => {
    reply = () => ({ status: 200, json: [[1]], delayMs: 2_000 });
    const controller = new AbortController();
    const reason = new Error('deadline passed');

    const call = client().featureExtraction({
      model: 'm',
      inputs: ['x'],
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(reason), 50);

    await expect(call).rejects.toBe(reason);
  });

  it('refuses an unknown provider name', () => {
    expect(() => new RemoteInference({ provider: 'nobody' })).toThrow(
      /expected one of .*hf-inference/,
    );
  });

  it('refuses endpointUrl and provider together', () => {
    expect(() => new RemoteInference({ endpointUrl: base, provider: 'hf-inference' })).toThrow(
      ConfigError,
    );
  });
});
