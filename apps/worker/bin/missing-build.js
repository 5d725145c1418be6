// The bins run dist/; a checkout that has not been built gets told how, not a module trace.
export function missingBuild(error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('/dist/')) {
    throw error;
  }
  process.stderr.write(
    `${error.message}\nThe worker is not built: run \`pnpm build\` (or \`pnpm install\`) in the repository.\n`,
  );
  process.exitCode = 2;
}
