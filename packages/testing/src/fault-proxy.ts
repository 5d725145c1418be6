import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Where a {@link FaultProxy} forwards its connections. */
export interface FaultProxyTarget {
  host: string;
  port: number;
}

/** One client connection and the connection the proxy opened to the target for it. */
interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** One side closed while stalled; the other learns of it on resume, as after a partition. */
  broken: boolean;
}

/**
 * A TCP relay on 127.0.0.1 that a test can break the way networks break: {@link cut} drops
 * every connection, {@link stall} stops bytes without closing anything (a hung peer, so
 * heartbeats time out), and {@link refuse} turns new connections away. It listens on a port the
 * system picks; read it from {@link port} once {@link FaultProxy.start} resolves.
 */
export class FaultProxy {
  readonly host = '127.0.0.1';
  readonly #server: Server;
  readonly #target: FaultProxyTarget;
  readonly #pairs = new Set<Pair>();
  #stalled = false;
  #refusing = false;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, target: FaultProxyTarget) {
    this.#server = server;
    this.#target = target;
  }

  /** Starts listening on 127.0.0.1 on an ephemeral port, forwarding to `target`. */
  static async start(target: FaultProxyTarget): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, target);
    server.on('connection', (client: Socket) => proxy.#accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  /** The port the proxy listens on. */
  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') {
      throw new Error('FaultProxy: expected a listening TCP server, found none');
    }
    return address.port;
  }

  /** How many connections the proxy is relaying now. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Destroys both sockets of every current connection, as a network failure would. */
  cut(): void {
    for (const pair of this.#pairs) this.#drop(pair);
  }

  /**
   * Stops forwarding bytes in both directions, on current and new connections, without closing
   * anything: what is sent waits in the sockets' buffers until {@link resume}. Like a network
   * partition, a side that closes meanwhile is not reported to the other until then, so each
   * side finds out only by its own timeouts.
   */
  stall(): void {
    this.#stalled = true;
    for (const { client, upstream } of this.#pairs) {
      client.pause();
      upstream.pause();
    }
  }

  /** Forwards bytes again, those held back by {@link stall} first. */
  resume(): void {
    this.#stalled = false;
    for (const pair of this.#pairs) {
      if (pair.broken) {
        this.#drop(pair);
        continue;
      }
      pair.client.resume();
      pair.upstream.resume();
    }
  }

  /** While on, each new connection is reset as soon as it is accepted; current ones live on. */
  refuse(on: boolean): void {
    this.#refusing = on;
  }

  /** Stops listening and cuts every connection; safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.cut();
    });
    return this.#closing;
  }

  #accept(client: Socket): void {
    if (this.#refusing || this.#closing !== undefined) {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(this.#target.port, this.#target.host);
    const pair: Pair = { client, upstream, broken: false };
    this.#pairs.add(pair);
    for (const socket of [client, upstream]) {
      // A reset from either side ends only this pair, and not while stalled.
      socket.on('error', () => this.#lose(pair));
      socket.on('close', () => this.#lose(pair));
    }
    this.#forward(client, upstream);
    this.#forward(upstream, client);
  }

  /** Copies `from` to `to`, pausing `from` while `to` is full or the proxy is stalled. */
  #forward(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!this.#stalled) from.resume();
    });
    from.on('end', () => {
      if (!this.#stalled) to.end();
    });
    if (this.#stalled) from.pause();
  }

  #lose(pair: Pair): void {
    if (this.#stalled) pair.broken = true;
    else this.#drop(pair);
  }

  #drop(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream.destroy();
  }
}
