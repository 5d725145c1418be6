/**
 * The memory baseline, run as its own process: a plain amqplib consumer that acks every message
 * of a queue with a given prefetch until SIGTERM, then prints how many it acked.
 * Plain JavaScript, run without a loader like the worker binary it is compared with.
 * Usage: plain-consumer-main.js <amqp url> <queue> <prefetch>
 */
import { connect } from 'amqplib';

const [url, queue, prefetch] = process.argv.slice(2);
const connection = await connect(url, {
  clientProperties: { connection_name: 'warren-bench-plain-memory' },
});
const channel = await connection.createChannel();
await channel.prefetch(Number(prefetch));
let acked = 0;
const { consumerTag } = await channel.consume(queue, (message) => {
  if (message === null) return;
  channel.ack(message);
  acked += 1;
});
process.stdout.write(`${JSON.stringify({ msg: 'consumer started' })}\n`);
process.once('SIGTERM', async () => {
  await channel.cancel(consumerTag);
  await connection.close();
  process.stdout.write(`${JSON.stringify({ msg: 'stopped', acked })}\n`);
});
