import type { Channel, ChannelModel } from 'amqplib';

/**
 * Closes a channel or a connection and resolves once it is closed, whoever finished it. amqplib
 * settles `close()` only when the broker answers it, so a connection that dies in between would
 * leave the promise pending for ever; its 'close' event comes either way.
 */
export function closeQuietly(closable: Channel | ChannelModel): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      closable.off('close', done);
      resolve();
    };
    closable.on('close', done);
    closable.close().then(done, done);
  });
}
