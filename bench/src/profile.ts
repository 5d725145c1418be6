import { Session } from 'node:inspector/promises';
import { type BenchBroker, paddedInput } from './broker.ts';
import { drainWithWarren } from './warren-run.ts';

const MODEL_TYPE = 'bench-noop';

/** Where a CPU profile's time went, by package and by function (self time, idle excluded). */
export interface ProfileSummary {
  jobs: number;
  jobsPerSecond: number;
  busyMs: number;
  /** The inspector's own work (`dispatch`: building the profile as it stops), left out. */
  profilerMs: number;
  byPackage: Share[];
  topFunctions: Share[];
}

export interface Share {
  name: string;
  ms: number;
  /** Fraction of the busy time, 0 to 1. */
  share: number;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * A CPU profile (the inspector's, in this process) of Warren draining `jobs` no-op jobs, to say
 * what limits the runtime's throughput.
 */
export async function profileNoopDrain(
  broker: BenchBroker,
  options: { jobs: number; prefetch: number; bodyBytes: number; modelPath: string },
): Promise<ProfileSummary> {
  await broker.declare(MODEL_TYPE, 'noop-results');
  const input = paddedInput(options.bodyBytes);
  // As in figure 1: no reply-to, so the handler's constant goes nowhere and each job is acked.
  await broker.fill(MODEL_TYPE, options.jobs, () => input, undefined);

  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  let profile: CpuProfile;
  let jobsPerSecond: number;
  try {
    const setup = { plugin: 'noop.js', prefetch: options.prefetch, modelPath: options.modelPath };
    ({ jobsPerSecond } = await drainWithWarren(broker, setup, options.jobs));
  } finally {
    ({ profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile });
    session.disconnect();
  }
  return { jobs: options.jobs, jobsPerSecond, ...summarise(profile) };
}

/** Self time per package and per function, largest first. */
export function summarise(profile: CpuProfile): Omit<ProfileSummary, 'jobs' | 'jobsPerSecond'> {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let busy = 0;
  let profiler = 0;
  for (const [index, id] of profile.samples.entries()) {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    // Stopping the profiler (building the profile, on this thread) is sampled too.
    if (functionName === 'dispatch' && url === '') {
      profiler += ms;
      continue;
    }
    busy += ms;
    const where = packageOf(url, functionName);
    byPackage.set(where, (byPackage.get(where) ?? 0) + ms);
    const name = url ? `${functionName || '(anonymous)'} (${where}:${lineNumber + 1})` : where;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  const shares = (totals: Map<string, number>, count: number) =>
    [...totals]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, ms]) => ({ name, ms, share: busy > 0 ? ms / busy : 0 }));
  return {
    busyMs: busy,
    profilerMs: profiler,
    byPackage: shares(byPackage, 8),
    topFunctions: shares(byFunction, 8),
  };
}

function packageOf(url: string, functionName: string): string {
  if (url === '') return functionName;
  if (url.startsWith('node:')) return 'node';
  const ours = /\/(packages|apps)\/([^/]+)\//.exec(url);
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + '/node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (ours) return `@warren/${ours[2]}`;
  return url.split('/').slice(-2).join('/');
}
