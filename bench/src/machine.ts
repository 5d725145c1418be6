import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
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
}

export async function describeMachine(): Promise<MachineInfo> {
  return {
    cpu: await cpuModel(),
    cores: cpus().length,
    memoryGiB: totalmem() / 1024 ** 3,
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
