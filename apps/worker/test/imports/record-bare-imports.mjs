// Preloaded with `node --import`: records every bare specifier the process resolves (through
// record-resolve.mjs, on the hooks thread) and writes them to stderr as it exits, as one line:
// `bare imports: ["amqplib", ...]`.
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';

const { port1, port2 } = new MessageChannel();
const seen = new Set();
port1.on('message', (specifier) => seen.add(specifier));
port1.unref();
register(new URL('./record-resolve.mjs', import.meta.url), {
  data: { port: port2 },
  transferList: [port2],
});
process.on('exit', () => {
  process.stderr.write(`bare imports: ${JSON.stringify([...seen].sort())}\n`);
});
