import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./imports/imported-main.ts', import.meta.url));

/** What the worker loads only when its config asks for it (docs/operating.md). */
const ON_DEMAND = [
  'ioredis',
  '@huggingface/inference',
  '@opentelemetry/sdk-metrics',
  '@opentelemetry/sdk-trace-node',
  '@opentelemetry/exporter-prometheus',
];

describe('what the worker imports', () => {
  it('leaves Redis, the remote inference client and the OpenTelemetry SDK until a config uses them', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN], {
      timeout: 60_000,
    });
    const { atStart, afterUse } = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      atStart: string[];
      afterUse: string[];
    };

    // The hook saw the worker's own imports, so an empty list below is not a blind spot.
    expect(atStart).toEqual(expect.arrayContaining(['amqplib', 'xstate', 'zod']));
    expect(atStart.filter((specifier) => ON_DEMAND.includes(specifier))).toEqual([]);
    // A remote inference client and a Prometheus reader bring theirs in; Redis stays out.
    expect(afterUse).toEqual(
      expect.arrayContaining([
        '@huggingface/inference',
        '@opentelemetry/sdk-metrics',
        '@opentelemetry/exporter-prometheus',
      ]),
    );
    expect(afterUse).not.toContain('ioredis');
  });
});
