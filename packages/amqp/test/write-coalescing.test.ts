import { Duplex } from 'node:stream';
import { type ChannelModel, connect } from 'amqplib';
import { describe, expect, it, vi } from 'vitest';
import { coalesceWrites } from '../src/write-coalescing.ts';
import { AMQP_URL } from './support.ts';

/** A socket stand-in that records each hand-over to the kernel: one entry per system call. */
function recordingSocket(highWaterMark = 16 * 1024) {
  const calls: string[][] = [];
  const socket = new Duplex({
    highWaterMark,
    read() {},
    write(chunk: Buffer, _encoding, done) {
      calls.push([chunk.toString()]);
      done();
    },
    writev(chunks, done) {
      calls.push(chunks.map(({ chunk }) => (chunk as Buffer).toString()));
      done();
    },
  });
  const model = { connection: { stream: socket } } as unknown as ChannelModel;
  return { socket, model, calls };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('coalesceWrites', () => {
  it('hands the frames written within one tick to the socket together, in order', async () => {
    const { socket, model, calls } = recordingSocket();
    coalesceWrites(model);
    socket.write(Buffer.from('ack 1'));
    socket.write(Buffer.from('ack 2'));
    socket.write(Buffer.from('publish'));
    expect(calls).toEqual([]);
    await nextTurn();
    expect(calls).toEqual([['ack 1', 'ack 2', 'publish']]);

    socket.write(Buffer.from('ack 3'));
    await nextTurn();
    expect(calls).toEqual([['ack 1', 'ack 2', 'publish'], ['ack 3']]);
  });

  it('still reports back-pressure past the high-water mark, and drains', async () => {
    const { socket, model, calls } = recordingSocket(8);
    coalesceWrites(model);
    expect(socket.write(Buffer.from('1234'))).toBe(true);
    expect(socket.write(Buffer.from('56789'))).toBe(false);
    await new Promise((resolve) => socket.once('drain', resolve));
    expect(calls.flat()).toEqual(['1234', '56789']);
  });

  it('leaves a connection without a stream as it was', () => {
    const model = { connection: {} } as unknown as ChannelModel;
    expect(coalesceWrites(model)).toBe(false);
  });

  it("finds the socket of amqplib's connections, which still carry messages both ways", async () => {
    const model = await connect(AMQP_URL);
    try {
      expect(coalesceWrites(model)).toBe(true);
      const channel = await model.createConfirmChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      for (let i = 0; i < 20; i += 1) channel.sendToQueue(queue, Buffer.from(`job ${i}`));
      await channel.waitForConfirms();
      const received: string[] = [];
      await channel.consume(queue, (message) => {
        if (message === null) return;
        received.push(message.content.toString());
        channel.ack(message);
      });
      await vi.waitFor(() => expect(received).toHaveLength(20));
      expect(received).toEqual(Array.from({ length: 20 }, (_, i) => `job ${i}`));
    } finally {
      await model.close();
    }
  });
});
