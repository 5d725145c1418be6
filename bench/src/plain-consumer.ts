import type { ChannelModel, ConsumeMessage } from 'amqplib';

/** What the hand-written baseline consumer does with each message. */
export type PlainMode =
  /** Acks it, nothing else. */
  | 'ack'
  /** Publishes a small reply to its reply-to queue, waits for the confirm, then acks. */
  | 'reply';

export interface PlainDrainResult {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
}

const REPLY = Buffer.from(JSON.stringify({ ok: true }));

/**
 * The baseline: a consumer written directly on amqplib, with the same prefetch as Warren's, that
 * drains `jobs` messages from `queue`. The clock starts before the channel is opened, as
 * Warren's starts before its worker declares and subscribes.
 */
export async function drainWithAmqplib(
  connection: ChannelModel,
  queue: string,
  options: { prefetch: number; mode: PlainMode; jobs: number },
): Promise<PlainDrainResult> {
  const startedAt = performance.now();
  const channel = await connection.createChannel();
  const replies = options.mode === 'reply' ? await connection.createConfirmChannel() : undefined;
  await channel.prefetch(options.prefetch);

  let done = 0;
  let finish!: () => void;
  const drained = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const settle = (message: ConsumeMessage) => {
    channel.ack(message);
    done += 1;
    if (done === options.jobs) finish();
  };
  const { consumerTag } = await channel.consume(queue, (message) => {
    if (message === null) return;
    const replyTo = message.properties.replyTo as string | undefined;
    if (replies === undefined || replyTo === undefined) return settle(message);
    const correlationId = message.properties.messageId as string | undefined;
    replies.publish('', replyTo, REPLY, { correlationId, persistent: true }, (error) => {
      if (error) channel.nack(message, false, true);
      else settle(message);
    });
  });
  await drained;
  const seconds = (performance.now() - startedAt) / 1000;

  await channel.cancel(consumerTag);
  await channel.close();
  await replies?.close();
  return { jobs: options.jobs, seconds, jobsPerSecond: options.jobs / seconds };
}
