import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PrometheusMetrics } from '@warren/telemetry';
import type { Logger } from 'pino';
import type { WorkerHealth } from './worker.ts';

export interface HealthServer {
  /** Where it listens (the port the system picked, when asked for 0). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * Serves `/livez` and `/readyz`: 200 when the worker is live (ready), else 503, each with the
 * health as JSON; and `/metrics`, the Prometheus text of `metrics` when given. Anything else is a
 * 404. Bodies carry no secrets: handler names, states, counts.
 */
export async function serveHealth(
  health: () => WorkerHealth,
  options: { host: string; port: number },
  logger: Logger,
  metrics?: PrometheusMetrics,
): Promise<HealthServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/metrics' && metrics !== undefined) {
      serveMetrics(metrics, request.method, response, logger);
      return;
    }
    const check = path === '/livez' ? 'live' : path === '/readyz' ? 'ready' : undefined;
    if (check === undefined || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(check === undefined ? 404 : 405, { 'content-type': 'text/plain' });
      response.end(check === undefined ? 'not found\n' : 'method not allowed\n');
      return;
    }
    let body: WorkerHealth;
    try {
      body = health();
    } catch (error) {
      logger.error({ err: error }, 'health check failed');
      response.writeHead(500, { 'content-type': 'text/plain' });
      response.end('health check failed\n');
      return;
    }
    response.writeHead(body[check] ? 200 : 503, { 'content-type': 'application/json' });
    response.end(request.method === 'HEAD' ? undefined : `${JSON.stringify(body)}\n`);
  });
  // Probes come every few seconds; a slow or idle client must not keep the process up.
  server.keepAliveTimeout = 5_000;
  server.listen(options.port, options.host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  logger.info(
    { host: options.host, port, metrics: metrics !== undefined },
    'health endpoints listening',
  );
  return {
    address: { host: options.host, port },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serveMetrics(
  metrics: PrometheusMetrics,
  method: string | undefined,
  response: ServerResponse,
  logger: Logger,
): void {
  if (method !== 'GET' && method !== 'HEAD') {
    response.writeHead(405, { 'content-type': 'text/plain' });
    response.end('method not allowed\n');
    return;
  }
  metrics.collect().then(
    (text) => {
      response.writeHead(200, { 'content-type': metrics.contentType });
      response.end(method === 'HEAD' ? undefined : text);
    },
    (error: unknown) => {
      logger.error({ err: error }, 'metrics collection failed');
      response.writeHead(500, { 'content-type': 'text/plain' });
      response.end('metrics collection failed\n');
    },
  );
}
