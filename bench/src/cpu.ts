import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** CPU seconds used while something ran: by this process (all threads) and by the broker. */
export interface CpuUse {
  processSeconds: number;
  /** RabbitMQ's Erlang VM on this machine; NaN when it is not found here. */
  brokerSeconds: number;
}

/** Clock ticks per second of /proc's CPU times. */
const TICKS = clockTicks();

/**
 * Starts measuring; the returned function gives the CPU time used since. The broker is the
 * local `beam.smp` process, if there is exactly one.
 */
export function startCpuMeter(): () => CpuUse {
  const broker = brokerPid();
  const processBefore = process.cpuUsage();
  const brokerBefore = broker === undefined ? Number.NaN : ticksOf(broker);
  return () => {
    const used = process.cpuUsage(processBefore);
    const brokerAfter = broker === undefined ? Number.NaN : ticksOf(broker);
    return {
      processSeconds: (used.user + used.system) / 1e6,
      brokerSeconds: (brokerAfter - brokerBefore) / TICKS,
    };
  };
}

function brokerPid(): number | undefined {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf-8').trim() === 'beam.smp') {
        found.push(Number(entry));
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return found.length === 1 ? found[0] : undefined;
}

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
function ticksOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf-8');
    // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return Number.NaN;
  }
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf-8' }).trim()) || 100;
  } catch {
    return 100;
  }
}
