import { readFile } from 'node:fs/promises';

/** A process's resident memory now and at its peak, in MiB, from /proc/<pid>/status. */
export interface ProcessMemory {
  rssMiB: number;
  peakRssMiB: number;
}

/** Reads VmRSS and VmHWM (the peak resident set) of a Linux process. */
export async function memoryOf(pid: number): Promise<ProcessMemory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf-8');
  return { rssMiB: fieldMiB(status, 'VmRSS'), peakRssMiB: fieldMiB(status, 'VmHWM') };
}

function fieldMiB(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (match === null) throw new Error(`/proc status has no ${field} line`);
  return Number(match[1]) / 1024;
}
