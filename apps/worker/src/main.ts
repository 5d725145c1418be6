import { parseArgs } from 'node:util';
import { describeThrown, isWarrenError } from '@warren/core';
import { startTelemetry, type Telemetry } from '@warren/telemetry';
import { loadConfig } from './config.ts';
import { createWorkerLogger } from './logging.ts';
import { Worker } from './worker.ts';

/** How long a stopped worker's process may take to end by itself before it is made to. */
const EXIT_GRACE_MS = 1_000;

const USAGE = `Usage: warren-worker --config <file.json>

Runs one consumer per handler plugin named in the config. Logs JSON lines to stdout.
AMQP_URL, when set, overrides broker.url (put credentials there, not in the file).
Traces and metrics follow the OTEL_* variables (docs/operating.md, Telemetry); none set, none sent.
On SIGTERM or SIGINT: stops consuming, finishes started jobs, exits 0.`;

/** Exit codes: 0 stopped cleanly, 1 a consumer failed, 2 bad usage or config. */
async function main(argv: string[]): Promise<number> {
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    process.stderr.write(`warren-worker: ${describeThrown(error)}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.config === undefined) {
    process.stderr.write(`warren-worker: --config is required\n\n${USAGE}\n`);
    return 2;
  }

  const boot = createWorkerLogger();
  const bootLogger = boot.logger;
  let repeats = boot.repeats;
  let telemetry: Telemetry | undefined;
  let worker: Worker;
  // Installed before the start, which can take long (models load, failed setups are retried): a
  // signal then stops the worker as it would a running one. The first signal of either kind
  // removes both handlers, so that a second one, of either kind, ends the process at once.
  const stopping = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    bootLogger.info({ signal }, 'stop requested; a second signal ends the process at once');
    stopping.abort();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    const config = await loadConfig(values.config);
    const made = createWorkerLogger({ level: config.log.level });
    repeats = made.repeats;
    // Before the worker, so that its first jobs are traced and counted.
    telemetry = await startTelemetry({
      logger: made.logger,
      serviceName: 'warren-worker',
      prometheus: config.health.port !== undefined,
    });
    worker = await Worker.start({
      config,
      logger: made.logger,
      metrics: telemetry.prometheus,
      signal: stopping.signal,
    });
  } catch (error) {
    await telemetry?.shutdown();
    repeats.flush();
    const code = isWarrenError(error) ? error.code : 'UNEXPECTED';
    bootLogger.fatal({ code, err: error }, 'worker failed to start');
    process.stderr.write(
      `warren-worker: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return isWarrenError(error) && error.code === 'WARREN_CONFIG_INVALID' ? 2 : 1;
  }

  // A plugin's stray promise must not kill the process without a drain, nor pass unseen.
  process.on('unhandledRejection', (reason) => {
    bootLogger.error({ err: reason }, 'unhandled rejection (a plugin left a promise unawaited)');
  });
  process.on('uncaughtException', (error) => {
    bootLogger.fatal({ err: error }, 'uncaught exception; stopping the worker');
    process.exitCode = 1;
    void worker.stop(error);
  });
  const exit = await worker.exited;
  // The last spans and metrics go out before the process ends, after a SIGTERM too.
  await telemetry.shutdown();
  repeats.flush();
  boot.repeats.flush();
  return exit.ok && process.exitCode !== 1 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
// The worker has stopped and its logs and telemetry are out. A timer or socket that a plugin left
// open must not keep the process alive: past a short grace, it exits anyway.
setTimeout(() => {
  process.stderr.write('warren-worker: a plugin still holds the process open; exiting anyway\n');
  process.exit();
}, EXIT_GRACE_MS).unref();
