// A module hook that tells the main thread every bare specifier resolved from now on.

/** @type {import('node:worker_threads').MessagePort | undefined} */
let port;

export function initialize(data) {
  port = data.port;
}

export async function resolve(specifier, context, next) {
  if (!specifier.startsWith('.') && !specifier.startsWith('/') && !specifier.includes(':')) {
    port?.postMessage(specifier);
  }
  return next(specifier, context);
}
