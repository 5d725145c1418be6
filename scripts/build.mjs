#!/usr/bin/env node
// Compiles the workspace packages' TypeScript (src/) to JavaScript (dist/), one file at a time, so
// that the worker binary runs without a TypeScript loader. Each file is only stripped of its types
// (ts.transpileModule) and its relative imports renamed from .ts to .js: the module graph stays as
// written, on-demand imports included. Type checking is `tsc -p tsconfig.json`'s job (pnpm test).
// Plain JavaScript, so that it runs before anything is built.
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The packages with a compiled `default` export (each package.json says `source` → src/). */
const PACKAGES = [
  'packages/amqp',
  'packages/core',
  'packages/inference',
  'packages/memory',
  'packages/redis',
  'packages/security',
  'packages/telemetry',
  'packages/testing',
  'apps/worker',
];

const COMPILER_OPTIONS = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  verbatimModuleSyntax: true,
  rewriteRelativeImportExtensions: true,
};

let files = 0;
for (const pkg of PACKAGES) {
  const src = join(ROOT, pkg, 'src');
  const dist = join(ROOT, pkg, 'dist');
  await rm(dist, { recursive: true, force: true });
  for (const entry of await readdir(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    // `parentPath` from Node 20.12; `path` before it.
    const from = join(entry.parentPath ?? entry.path, entry.name);
    const to = join(dist, relative(src, from));
    await mkdir(dirname(to), { recursive: true });
    if (entry.name.endsWith('.d.ts')) continue;
    if (entry.name.endsWith('.ts')) {
      await writeFile(to.replace(/\.ts$/, '.js'), transpile(await readFile(from, 'utf8'), from));
    } else {
      await copyFile(from, to);
    }
    files += 1;
  }
}
process.stdout.write(
  `build: ${files} files compiled or copied into dist/ of ${PACKAGES.length} packages\n`,
);

function transpile(source, fileName) {
  const { outputText, diagnostics = [] } = ts.transpileModule(source, {
    compilerOptions: COMPILER_OPTIONS,
    fileName,
    reportDiagnostics: true,
  });
  if (diagnostics.length > 0) {
    const text = ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (name) => name,
      getCurrentDirectory: () => ROOT,
      getNewLine: () => '\n',
    });
    throw new Error(`build: ${relative(ROOT, fileName)} does not compile\n${text}`);
  }
  return outputText;
}
