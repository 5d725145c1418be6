import { context, type DiagLogger, ROOT_CONTEXT } from '@opentelemetry/api';
import type { LogSink } from '@warren/core';

/** The user and password part of any URL in a text (`scheme://user:secret@`). */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@'"]*@/gi;

/** A text fit for the log: URLs keep their host and path, never their credentials. */
export function withoutUrlCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1');
}

/**
 * The SDK's own diagnostics (a failed export, a setting it could not read) as Warren log lines:
 * one fixed message, the SDK's words in `detail` with any URL credentials taken out, and the
 * first error it passed as `err`. Other arguments are dropped: they may hold request data. Each
 * is written outside any span: an export runs on a timer set while some job's span was active,
 * and its failure must not be logged under that job's trace id. (A warning the SDK raises inside
 * a job's own span, an invalid attribute say, then goes without that job's trace id too.)
 */
export function diagLogTo(logger: LogSink): DiagLogger {
  const write =
    (level: keyof LogSink) =>
    (message: string, ...args: unknown[]): void => {
      const err = args.find((arg) => arg instanceof Error);
      const fields = {
        detail: withoutUrlCredentials(readable(String(message))),
        ...(err === undefined ? {} : { err }),
      };
      context.with(ROOT_CONTEXT, () => logger[level](fields, 'opentelemetry diagnostic'));
    };
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    verbose: write('debug'),
  };
}

/** The SDK reports a thrown error as its JSON (stack and all); its message says enough. */
function readable(message: string): string {
  if (!message.startsWith('{')) return message;
  try {
    const parsed: unknown = JSON.parse(message);
    if (typeof parsed === 'object' && parsed !== null && 'message' in parsed) {
      return String(parsed.message);
    }
  } catch {
    // Not JSON after all: keep it as it came.
  }
  return message;
}
