#!/usr/bin/env node
// Compiles the workspace packages' TypeScript (src/) to JavaScript (dist/), one file at a time, so
// that the worker binary runs without a TypeScript loader. Each file is only stripped of its types
// (ts.transpileModule) and its relative imports renamed from .ts to .js: the module graph stays as
// written, on-demand imports included. Type checking is `tsc -p tsconfig.json`'s job (pnpm test).
// Plain JavaScript, so that it runs before anything is built.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The workspace packages that export their sources under `source`: each gets a dist/. */
const PACKAGES = await compiledPackages(['packages', 'apps']);

const COMPILER_OPTIONS = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  verbatimModuleSyntax: true,
  rewriteRelativeImportExtensions: true,
};

// dist/ is updated in place, each changed file written whole and renamed over the old one, and
// files whose source is gone removed: a build of unchanged sources touches nothing, so a test run
// that builds never pulls dist/ from under a worker another run has started.
let written = 0;
let unchanged = 0;
for (const pkg of PACKAGES) {
  const src = join(ROOT, pkg, 'src');
  const dist = join(ROOT, pkg, 'dist');
  const outputs = new Set();
  for (const entry of await readdir(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith('.d.ts')) continue;
    // `parentPath` from Node 20.12; `path` before it.
    const from = join(entry.parentPath ?? entry.path, entry.name);
    const source = await readFile(from);
    const typescript = entry.name.endsWith('.ts');
    const copied = join(dist, relative(src, from));
    const to = typescript ? copied.replace(/\.ts$/, '.js') : copied;
    const output = typescript ? Buffer.from(transpile(source.toString('utf8'), from)) : source;
    outputs.add(to);
    if (await sameContent(to, output)) {
      unchanged += 1;
      continue;
    }
    await mkdir(dirname(to), { recursive: true });
    const temporary = `${to}.${process.pid}.tmp`;
    await writeFile(temporary, output);
    await rename(temporary, to);
    written += 1;
  }
  await removeAllBut(dist, outputs);
}
process.stdout.write(
  `build: dist/ of ${PACKAGES.length} packages, ${written} files written, ${unchanged} unchanged\n`,
);

async function compiledPackages(folders) {
  const found = [];
  for (const folder of folders) {
    for (const name of (await readdir(join(ROOT, folder))).sort()) {
      const manifest = join(ROOT, folder, name, 'package.json');
      const exports = JSON.parse(await readFile(manifest, 'utf8').catch(() => '{}')).exports ?? {};
      if (Object.values(exports).some((target) => target?.source !== undefined)) {
        found.push(join(folder, name));
      }
    }
  }
  return found;
}

async function sameContent(path, content) {
  const existing = await readFile(path).catch(() => undefined);
  return existing?.equals(content) === true;
}

/**
 * Deletes the files under `dir` that are not in `keep` (what the sources no longer make), but not
 * another build's temporary files, which it is about to rename.
 */
async function removeAllBut(dir, keep) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    if (entry.isFile() && !keep.has(path) && !path.endsWith('.tmp'))
      await rm(path, { force: true });
  }
}

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
