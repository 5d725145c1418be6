/**
 * Which packages the worker imports, in a process of its own: first what the worker binary
 * imports before it reads a config, then after a remote inference client and telemetry with a
 * Prometheus reader are made. Prints one JSON line: `{ atStart, afterUse }`, the bare
 * specifiers resolved in each phase. Run with `node --import tsx`.
 */
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';

const { port1, port2 } = new MessageChannel();
let seen = new Set<string>();
port1.on('message', (specifier: string) => seen.add(specifier));
register(new URL('./record-resolve.mjs', import.meta.url), {
  data: { port: port2 },
  transferList: [port2],
});

/** What was resolved since the last call: the hook posts from its own thread, so wait a little. */
async function phase(): Promise<string[]> {
  await new Promise((resolve) => setTimeout(resolve, 200));
  const specifiers = [...seen].sort();
  seen = new Set();
  return specifiers;
}

// The modules main.ts imports, without running main().
const { parseConfig } = await import('../../src/config.ts');
await import('../../src/logging.ts');
await import('../../src/worker.ts');
const { startTelemetry } = await import('@warren/telemetry');
const { createInference } = await import('../../src/resources.ts');
const atStart = await phase();

const { pino } = await import('pino');
const config = parseConfig(
  {
    handlers: [{ module: './unused.ts' }],
    inference: { use: 'remote', remote: { endpointUrl: 'http://127.0.0.1:9/unused' } },
  },
  process.cwd(),
);
await createInference(config, {}, pino({ level: 'silent' }));
const telemetry = await startTelemetry({ prometheus: true });
await telemetry.shutdown();
const afterUse = await phase();

port1.close();
process.stdout.write(`${JSON.stringify({ atStart, afterUse })}\n`);
