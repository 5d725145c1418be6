import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { promisify } from 'node:util';

/** The machine a bench ran on, as the report prints it. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  /** `rabbitmqctl version`, or why it is unknown. */
  rabbitmq: string;
  os: string;
  /**
   * The 1-minute load average as the bench started: above a fraction of the cores, something
   * else was running and every figure is suspect.
   */
  loadAtStart: number;
  /**
   * The share of the machine's CPU time that the hypervisor gave to others while the bench ran
   * (steal time, from /proc/stat), 0 to 1; absent where it cannot be read.
   */
  stolen?: number;
}

/** The machine's CPU time counters since boot, in clock ticks (the `cpu` line of /proc/stat). */
export interface CpuTicks {
  total: number;
  steal: number;
}

export async function cpuTicks(): Promise<CpuTicks | undefined> {
  return parseCpuTicks(await readFile('/proc/stat', 'utf-8').catch(() => ''));
}

/** The machine's counters from the text of /proc/stat, or undefined if it has none. */
export function parseCpuTicks(stat: string): CpuTicks | undefined {
  const fields = /^cpu\s+(.+)$/m.exec(stat)?.[1]?.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal; guest time is already counted in user.
  if (fields === undefined || fields.length < 8 || fields.some(Number.isNaN)) return undefined;
  const counted = fields.slice(0, 8);
  return { total: counted.reduce((sum, ticks) => sum + ticks, 0), steal: counted[7]! };
}

/** The share of CPU time stolen between two readings, or undefined without both. */
export function stolenBetween(
  before: CpuTicks | undefined,
  after: CpuTicks | undefined,
): number | undefined {
  if (before === undefined || after === undefined || after.total <= before.total) return undefined;
  return (after.steal - before.steal) / (after.total - before.total);
}

export async function describeMachine(): Promise<MachineInfo> {
  return {
    cpu: await cpuModel(),
    cores: cpus().length,
    memoryGiB: totalmem() / 1024 ** 3,
    loadAtStart: loadavg()[0]!,
    node: process.version,
    rabbitmq: await rabbitmqVersion(),
    os: `${process.platform} ${(await readFile('/proc/sys/kernel/osrelease', 'utf-8').catch(() => '?')).trim()}`,
  };
}

async function cpuModel(): Promise<string> {
  const info = await readFile('/proc/cpuinfo', 'utf-8').catch(() => '');
  const match = /^model name\s*:\s*(.+)$/m.exec(info);
  return match?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
}

async function rabbitmqVersion(): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('rabbitmqctl', ['version'], { timeout: 20_000 });
    return stdout.trim() || 'unknown (rabbitmqctl printed nothing)';
  } catch {
    return 'unknown (rabbitmqctl not available)';
  }
}
