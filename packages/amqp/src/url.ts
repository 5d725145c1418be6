import { redactServiceUrl, serviceUrlProblem } from '@warren/core';

const PROTOCOLS = new Set(['amqp:', 'amqps:']);

/** What {@link redactUrl} returns for a string it cannot read as an AMQP URL. */
const UNREADABLE = 'amqp://<unreadable url>';

/**
 * An AMQP URL fit for logs and error messages: scheme, host, port and vhost, without the user,
 * the password or the query (whose parameters some tools use for key files and passwords).
 *
 * @example
 * redactUrl('amqp://warren:s3cret@rabbit:5672/jobs'); // 'amqp://rabbit:5672/jobs'
 */
export function redactUrl(url: string): string {
  return redactServiceUrl(url, PROTOCOLS, UNREADABLE);
}

/** What is wrong with `url` as an AMQP URL, in words that never repeat its credentials. */
export function amqpUrlProblem(url: string): string | undefined {
  return serviceUrlProblem(url, PROTOCOLS);
}

/**
 * The URL amqplib should dial. amqplib reads the heartbeat only from the query of a string URL,
 * so a heartbeat given as an option travels there.
 */
export function dialUrl(url: string, heartbeatSeconds: number | undefined): string {
  if (heartbeatSeconds === undefined) return url;
  const dial = new URL(url);
  dial.searchParams.set('heartbeat', String(heartbeatSeconds));
  return dial.href;
}

/** Whether `url` carries a password (false for text that is not a URL). */
export function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/** The user name `url` logs in as: its own, or amqplib's default `guest` when it names none. */
export function urlUsername(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return 'guest';
    return decodeURIComponent(parsed.username);
  } catch {
    return 'guest';
  }
}
