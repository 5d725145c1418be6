import type { Channel, ConsumeMessage } from 'amqplib';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConsumerChannel, type Unsent } from '../src/consumer-channel.ts';
import { BrokerFixture } from './support.ts';

const broker = new BrokerFixture();
beforeEach(() => broker.start());
afterEach(() => broker.cleanUp());
afterAll(() => broker.stop());

/** A frame the channel would have sent: `basic.ack` or `basic.nack`. */
type Frame =
  | { kind: 'ack'; tag: number; multiple: boolean }
  | { kind: 'nack'; tag: number; requeue: boolean };

/**
 * A real amqplib channel whose ack and nack are replaced by recorders: these tests look at the
 * frames a {@link ConsumerChannel} chooses, and nothing reaches the broker.
 */
async function recordingLine(): Promise<{ line: ConsumerChannel; frames: Frame[] }> {
  const channel: Channel = await broker.channel();
  const frames: Frame[] = [];
  vi.spyOn(channel, 'ack').mockImplementation((message, allUpTo) => {
    frames.push({ kind: 'ack', tag: message.fields.deliveryTag, multiple: allUpTo === true });
  });
  vi.spyOn(channel, 'nack').mockImplementation((message, allUpTo, requeue) => {
    expect(allUpTo).toBe(false);
    frames.push({ kind: 'nack', tag: message.fields.deliveryTag, requeue: requeue !== false });
  });
  const line = new ConsumerChannel(channel, 10, () => {});
  return { line, frames };
}

function delivered(line: ConsumerChannel, tag: number): Unsent {
  const unsent: Unsent = { message: consumeMessage(tag), ackDue: false };
  line.track(unsent);
  return unsent;
}

function consumeMessage(tag: number): ConsumeMessage {
  return {
    content: Buffer.from('{}'),
    fields: {
      deliveryTag: tag,
      redelivered: false,
      exchange: '',
      routingKey: 'q',
      consumerTag: 'c',
    },
    properties: {
      contentType: undefined,
      contentEncoding: undefined,
      headers: {},
      deliveryMode: undefined,
      priority: undefined,
      correlationId: undefined,
      replyTo: undefined,
      expiration: undefined,
      messageId: undefined,
      timestamp: undefined,
      type: undefined,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
    },
  };
}

/** Lets the turn end, and with it the flush the channel scheduled. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('a consumer channel settling deliveries', () => {
  it('sends the acks of one turn as one multiple-ack when they are the oldest unsettled', async () => {
    const { line, frames } = await recordingLine();
    const deliveries = [1, 2, 3, 4, 5].map((tag) => delivered(line, tag));

    for (const delivery of deliveries.slice(0, 4).reverse()) line.ack(delivery);
    expect(frames).toEqual([]);
    await nextTurn();

    expect(frames).toEqual([{ kind: 'ack', tag: 4, multiple: true }]);
    expect(line.unsettled).toBe(1);
  });

  it('acks one by one those behind an unsettled delivery, without waiting for it', async () => {
    const { line, frames } = await recordingLine();
    const deliveries = [1, 2, 3, 4, 5, 6].map((tag) => delivered(line, tag));

    for (const index of [5, 0, 1, 3]) line.ack(deliveries[index]!);
    await nextTurn();
    expect(frames).toEqual([
      { kind: 'ack', tag: 2, multiple: true },
      { kind: 'ack', tag: 6, multiple: false },
      { kind: 'ack', tag: 4, multiple: false },
    ]);

    // Once 3 is acked, 5 is the oldest unsettled: the run is 3 alone, and it goes on its own.
    line.ack(deliveries[2]!);
    await nextTurn();
    expect(frames.slice(3)).toEqual([{ kind: 'ack', tag: 3, multiple: false }]);
  });

  it('sends the acks made before a nack first, so that none covers it', async () => {
    const { line, frames } = await recordingLine();
    const deliveries = [1, 2, 3, 4].map((tag) => delivered(line, tag));

    line.ack(deliveries[0]!);
    line.nack(deliveries[1]!, true);
    line.ack(deliveries[2]!);
    line.ack(deliveries[3]!);
    await nextTurn();

    expect(frames).toEqual([
      { kind: 'ack', tag: 1, multiple: false },
      { kind: 'nack', tag: 2, requeue: true },
      { kind: 'ack', tag: 4, multiple: true },
    ]);
  });

  it('drops the acks of a channel that closed before its turn ended, and sends nothing later', async () => {
    const dropped = await recordingLine();
    const replacement = await recordingLine();
    const old = [1, 2].map((tag) => delivered(dropped.line, tag));
    const fresh = [1, 2].map((tag) => delivered(replacement.line, tag));

    for (const delivery of old) dropped.line.ack(delivery);
    dropped.line.open = false;
    replacement.line.ack(fresh[1]!);
    await nextTurn();
    dropped.line.flush();

    expect(dropped.frames).toEqual([]);
    // The new channel's tag 1 was not acked: the old channel's acks never reach it.
    expect(replacement.frames).toEqual([{ kind: 'ack', tag: 2, multiple: false }]);
  });

  it('sends what a broker would count as exactly the settles made, for random interleavings', async () => {
    const random = seeded(20_261_204);
    for (let scenario = 0; scenario < 150; scenario += 1) {
      const { line, frames } = await recordingLine();
      const acked = new Set<number>();
      const nacked = new Set<number>();
      const waiting: Array<{ tag: number; unsent: Unsent }> = [];
      let nextTag = 1;

      for (let turn = 0; turn < 8; turn += 1) {
        const arriving = Math.floor(random() * 6);
        for (let n = 0; n < arriving; n += 1) {
          waiting.push({ tag: nextTag, unsent: delivered(line, nextTag) });
          nextTag += 1;
        }
        const settling = Math.floor(random() * (waiting.length + 1));
        for (let n = 0; n < settling; n += 1) {
          const { tag, unsent } = waiting.splice(Math.floor(random() * waiting.length), 1)[0]!;
          const roll = random();
          if (roll < 0.8) {
            line.ack(unsent);
            acked.add(tag);
          } else {
            line.nack(unsent, roll < 0.9);
            nacked.add(tag);
          }
        }
        await nextTurn();
      }

      const outcome = replay(nextTag - 1, frames);
      expect(outcome.acked).toEqual(acked);
      expect(outcome.nacked).toEqual(nacked);
      expect(line.unsettled).toBe(waiting.length);
    }
  });
});

/**
 * What a broker makes of `frames` on a channel that delivered tags 1 to `delivered`: acks and
 * nacks as the broker counts them. A frame naming a tag already settled fails, as the broker
 * would close the channel for it.
 */
function replay(delivered: number, frames: Frame[]): { acked: Set<number>; nacked: Set<number> } {
  const unsettled = new Set(Array.from({ length: delivered }, (_, index) => index + 1));
  const acked = new Set<number>();
  const nacked = new Set<number>();
  for (const frame of frames) {
    if (!unsettled.has(frame.tag)) throw new Error(`unknown delivery tag ${frame.tag}`);
    const covered =
      frame.kind === 'ack' && frame.multiple
        ? [...unsettled].filter((tag) => tag <= frame.tag)
        : [frame.tag];
    for (const tag of covered) {
      unsettled.delete(tag);
      (frame.kind === 'ack' ? acked : nacked).add(tag);
    }
  }
  return { acked, nacked };
}

/** A small seeded generator (mulberry32), so that a failing interleaving can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
