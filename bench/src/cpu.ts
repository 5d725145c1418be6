import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** CPU seconds used while something ran: by this process (all threads) and by the broker. */
export interface CpuUse {
  processSeconds: number;
  /**
   * Of `processSeconds`, the main thread's (the event loop: Warren's runtime, tokenising,
   * pooling); the rest is the other threads: the model's, and V8's and libuv's helpers (garbage
   * collection, the thread pool). NaN where /proc/self/task is not readable.
   */
  mainThreadSeconds: number;
  /** RabbitMQ's Erlang VM on this machine; NaN when it is not found here. */
  brokerSeconds: number;
}

/** A {@link CpuUse} for a run that did not happen. */
export const NO_CPU_USE: CpuUse = {
  processSeconds: Number.NaN,
  mainThreadSeconds: Number.NaN,
  brokerSeconds: Number.NaN,
};

/** Clock ticks per second of /proc's CPU times. */
const TICKS = clockTicks();

/**
 * Starts measuring; the returned function gives the CPU time used since. The broker is the
 * local `beam.smp` process, if there is exactly one.
 */
export function startCpuMeter(): () => CpuUse {
  const broker = brokerPid();
  // The main thread's id is the process id.
  const mainThread = `self/task/${process.pid}`;
  const processBefore = process.cpuUsage();
  const mainBefore = ticksOf(mainThread);
  const brokerBefore = broker === undefined ? Number.NaN : ticksOf(String(broker));
  return () => {
    const used = process.cpuUsage(processBefore);
    const brokerAfter = broker === undefined ? Number.NaN : ticksOf(String(broker));
    return {
      processSeconds: (used.user + used.system) / 1e6,
      mainThreadSeconds: (ticksOf(mainThread) - mainBefore) / TICKS,
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

/**
 * utime + stime of a process or thread, in clock ticks (fields 14 and 15 of /proc/<path>/stat,
 * `path` a pid or `self/task/<tid>`).
 */
function ticksOf(path: string): number {
  try {
    const stat = readFileSync(`/proc/${path}/stat`, 'utf-8');
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
