import { pathToFileURL } from 'node:url';
import { ConfigError, describeIssues, type Handler, isHandler, PluginError } from '@warren/core';

/** A handler with its options validated, ready for a consumer. */
export interface LoadedHandler {
  handler: Handler;
  options: unknown;
}

/**
 * Imports a plugin module and finds its handler: the default export, or an export named
 * `handler`, made with `defineHandler`.
 */
export async function loadHandler(
  specifier: string,
  index: number,
  options: unknown,
): Promise<LoadedHandler> {
  const url = specifier.startsWith('/') ? pathToFileURL(specifier).href : specifier;
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new PluginError(
      `config.handlers[${index}].module: cannot import ${specifier} (${detail})`,
      {
        cause,
      },
    );
  }

  const handler = [module.default, module.handler].find(isHandler);
  if (handler === undefined) {
    const exports = Object.keys(module).join(', ') || 'none';
    throw new PluginError(
      `config.handlers[${index}].module: expected ${specifier} to export a handler made with ` +
        `defineHandler (as default or as \`handler\`), found exports: ${exports}`,
    );
  }
  return { handler, options: validateOptions(handler, index, options) };
}

function validateOptions(handler: Handler, index: number, options: unknown): unknown {
  const root = `config.handlers[${index}].options`;
  if (handler.options === undefined) {
    if (options === undefined) return undefined;
    throw new ConfigError(`${root}: handler ${handler.name} takes no options, found some`);
  }
  const parsed = handler.options.safeParse(options ?? {}, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(describeIssues(parsed.error, { root, showValues: true }));
  }
  return parsed.data;
}
