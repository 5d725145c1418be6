import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy, sleep, waitFor } from '../src/index.ts';

/** A client of the proxy that keeps what it receives and whether it was closed. */
interface Client {
  socket: Socket;
  received: () => string;
  closed: () => boolean;
}

let echo: Server;
let proxy: FaultProxy;
const clients: Socket[] = [];

beforeEach(async () => {
  echo = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const address = echo.address();
  if (address === null || typeof address === 'string') throw new Error('no echo port');
  proxy = await FaultProxy.start({ host: '127.0.0.1', port: address.port });
});

afterEach(async () => {
  for (const socket of clients.splice(0)) socket.destroy();
  await proxy.close();
  await new Promise((resolve) => echo.close(resolve));
});

async function connectClient(): Promise<Client> {
  const socket = createConnection(proxy.port, proxy.host);
  clients.push(socket);
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  await once(socket, 'connect');
  return { socket, received: () => received, closed: () => closed };
}

describe('FaultProxy', () => {
  it('listens on 127.0.0.1 and forwards both ways to its target', async () => {
    const client = await connectClient();

    client.socket.write('hello');
    await waitFor(() => client.received() === 'hello');
    expect(proxy.host).toBe('127.0.0.1');
    expect(proxy.connections).toBe(1);
  });

  it('cuts every current connection, and accepts new ones after', async () => {
    const first = await connectClient();
    const second = await connectClient();
    await waitFor(() => proxy.connections === 2);

    proxy.cut();
    await waitFor(() => first.closed() && second.closed());
    expect(proxy.connections).toBe(0);

    const third = await connectClient();
    third.socket.write('again');
    await waitFor(() => third.received() === 'again');
  });

  it('holds bytes back while stalled without closing, and delivers them on resume', async () => {
    const client = await connectClient();
    client.socket.write('before');
    await waitFor(() => client.received() === 'before');

    proxy.stall();
    client.socket.write('-during');
    await sleep(100);
    expect(client.received()).toBe('before');
    expect(client.closed()).toBe(false);

    proxy.resume();
    await waitFor(() => client.received() === 'before-during');
  });

  it('stalls connections made while stalled too', async () => {
    proxy.stall();
    const client = await connectClient();
    client.socket.write('late');
    await sleep(100);
    expect(client.received()).toBe('');

    proxy.resume();
    await waitFor(() => client.received() === 'late');
  });

  it('resets new connections while refusing, keeps the current ones, and accepts again after', async () => {
    const kept = await connectClient();
    proxy.refuse(true);

    const refused = createConnection(proxy.port, proxy.host);
    clients.push(refused);
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNRESET');
    kept.socket.write('still here');
    await waitFor(() => kept.received() === 'still here');

    proxy.refuse(false);
    const accepted = await connectClient();
    accepted.socket.write('back');
    await waitFor(() => accepted.received() === 'back');
  });

  it('closes the connection to the client when nothing listens at the target', async () => {
    const vacant = createServer();
    vacant.listen(0, '127.0.0.1');
    await once(vacant, 'listening');
    const address = vacant.address();
    if (address === null || typeof address === 'string') throw new Error('no vacant port');
    await new Promise((resolve) => vacant.close(resolve));
    const dangling = await FaultProxy.start({ host: '127.0.0.1', port: address.port });

    try {
      const socket = createConnection(dangling.port, dangling.host);
      socket.on('error', () => {});
      clients.push(socket);
      await once(socket, 'close');
      expect(dangling.connections).toBe(0);
    } finally {
      await dangling.close();
    }
  });

  it('closes the listener and cuts every connection on close, more than once without harm', async () => {
    const client = await connectClient();
    const port = proxy.port;

    await Promise.all([proxy.close(), proxy.close()]);
    await waitFor(() => client.closed());
    const late = createConnection(port, '127.0.0.1');
    clients.push(late);
    const [error] = (await once(late, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNREFUSED');
  });
});
