import { existsSync } from 'node:fs';
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
    module = await importPlugin(url);
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

/** A module file Node cannot load without a TypeScript loader. */
const TYPESCRIPT_FILE = /\.[cm]?tsx?$/;

/** Whether this module runs as TypeScript, i.e. under a loader that plugins can use too. */
const RUNNING_SOURCES = TYPESCRIPT_FILE.test(import.meta.url);

let typeScriptLoader: Promise<void> | undefined;

/**
 * Imports a plugin. The compiled worker (dist/) runs without a TypeScript loader, which costs
 * memory (tsx's loader thread) that a JavaScript plugin does not need, so tsx is registered for
 * the first plugin that needs it: one that resolves to a TypeScript file, or one that resolves
 * only through tsx (`./handler.js` for handler.ts, a path without its `.ts`), which is
 * imported again once tsx is registered. A JavaScript plugin that imports TypeScript files is
 * not detected: Node keeps the failed import (docs/writing-a-handler.md).
 */
async function importPlugin(url: string): Promise<Record<string, unknown>> {
  if (RUNNING_SOURCES) return (await import(url)) as Record<string, unknown>;
  if (TYPESCRIPT_FILE.test(resolvedPath(url))) await registerTypeScript();
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    // Only a plugin whose own file Node did not find: one that is there but misses a dependency
    // is no TypeScript matter, and tsx would not change the answer.
    const notFound = (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND';
    if (!notFound || existsSync(resolvedPath(url))) throw error;
    await registerTypeScript();
    return (await import(url)) as Record<string, unknown>;
  }
}

/** Where Node resolves `url` without a loader, or '' where it cannot. */
function resolvedPath(url: string): string {
  try {
    return new URL(import.meta.resolve(url)).pathname;
  } catch {
    return '';
  }
}

function registerTypeScript(): Promise<void> {
  typeScriptLoader ??= import('tsx/esm/api').then(({ register }) => {
    register();
  });
  return typeScriptLoader;
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
