import type { InferenceClient } from '@warren/core';
import type { ChannelModel, ConsumeMessage } from 'amqplib';

/** A running baseline worker; `stop` cancels it and closes its channels. */
export interface PlainEmbedder {
  /** What a model call threw, if one did: the worker then stops taking batches. */
  readonly failure: unknown;
  stop(): Promise<void>;
}

/**
 * The latency baseline: an embedding worker written directly on amqplib, as one would without
 * Warren. Whenever the model is idle it embeds every message waiting (up to `maxBatch`) in one
 * call, publishes each result to its reply-to queue and acks the job when the broker confirms
 * the result; the next batch does not wait for the confirms. No validation, retries, dead
 * letters, deadlines or dedupe.
 */
export async function startPlainEmbedder(
  connection: ChannelModel,
  queue: string,
  options: {
    inference: InferenceClient;
    model: string;
    prefetch: number;
    maxBatch: number;
    /** Called each time a job is acked (its result confirmed). */
    onAcked?: () => void;
  },
): Promise<PlainEmbedder> {
  const channel = await connection.createChannel();
  const replies = await connection.createConfirmChannel();
  await channel.prefetch(options.prefetch);
  const waiting: ConsumeMessage[] = [];
  let busy = false;
  let replying = 0;
  let failure: unknown;

  const reply = (message: ConsumeMessage, embedding: number[]) => {
    const body = Buffer.from(JSON.stringify({ embedding }));
    const properties = { correlationId: message.properties.messageId, persistent: true };
    replying += 1;
    replies.publish('', message.properties.replyTo, body, properties, (error) => {
      replying -= 1;
      if (error) channel.nack(message, false, true);
      else {
        channel.ack(message);
        options.onAcked?.();
      }
    });
  };
  // The next batch starts as soon as the model is free; replies are confirmed meanwhile.
  const embedWaiting = async () => {
    if (busy || waiting.length === 0 || failure !== undefined) return;
    busy = true;
    const batch = waiting.splice(0, options.maxBatch);
    const texts = batch.map((message) => (JSON.parse(message.content.toString()) as Text).text);
    let vectors: number[][];
    try {
      vectors = await options.inference.featureExtraction({
        model: options.model,
        inputs: texts,
        pooling: 'cls',
        normalize: true,
      });
    } catch (error) {
      failure = error;
      return;
    } finally {
      busy = false;
    }
    for (const [i, message] of batch.entries()) reply(message, vectors[i]!);
    void embedWaiting();
  };

  const { consumerTag } = await channel.consume(queue, (message) => {
    if (message === null) return;
    waiting.push(message);
    void embedWaiting();
  });
  return {
    get failure() {
      return failure;
    },
    async stop() {
      await channel.cancel(consumerTag);
      while (busy || (waiting.length > 0 && failure === undefined) || replying > 0) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await channel.close();
      await replies.close();
    },
  };
}

interface Text {
  text: string;
}
