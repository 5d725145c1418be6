import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { WorkerHealth } from './worker.ts';

export interface HealthServer {
  /** Where it listens (the port the system picked, when asked for 0). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * Serves `/livez` and `/readyz`: 200 when the worker is live (ready), else 503, each with the
 * health as JSON. Anything else is a 404. Bodies carry no secrets: handler names, states, counts.
 */
export async function serveHealth(
  health: () => WorkerHealth,
  options: { host: string; port: number },
  logger: Logger,
): Promise<HealthServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
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
  logger.info({ host: options.host, port }, 'health endpoints listening');
  return {
    address: { host: options.host, port },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
