import type { LogSink } from '@warren/core';

export interface LoggedLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  msg: string;
}

/** A log sink that keeps every line, for tests that check what was (not) logged. */
export function recordingLogger(): LogSink & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const at =
    (level: LoggedLine['level']) =>
    (fields: object, msg: string): void =>
      void lines.push({ level, fields: fields as Record<string, unknown>, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Waits until `condition` holds, polling; fails with `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Hides every OTEL_* variable of the surrounding shell from a test (undo: vi.unstubAllEnvs). */
export function clearOtelEnv(stub: (name: string, value: undefined) => unknown): void {
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('OTEL_')) stub(name, undefined);
  }
}
