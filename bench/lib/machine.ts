import fs from 'node:fs';
import os from 'node:os';
import { nowMs } from './load';
import { cpuSnapshot, type CpuSnapshot } from './cpu';

/**
 * What the machine was doing around one measurement: the load average, and how much CPU went to
 * processes outside this bench (other test runs on a shared machine) versus the bench's own tree.
 * A ratio measured while another process took a core is a figure about that process too; this
 * lets a reader see it. Linux only (/proc); elsewhere the CPU shares are NaN.
 */
export interface MachineSnapshot {
  at: number;
  load1: number;
  /** Jiffies of the whole machine (all cores) busy and in total, from /proc/stat. */
  busy: number;
  total: number;
  /** Jiffies of this process and its descendants (including reaped children). */
  ours: number;
  /** How many processes the bench's tree had. */
  procs: number;
  /** CPU seconds so far by process: named children (nameProcess), else by command (ferretdb, postgres…). */
  byProcess: CpuSnapshot;
}

export interface MachineWindow {
  load1Start: number;
  load1End: number;
  /** Cores busy on the whole machine, on average over the window. */
  busyCores: number;
  /** Cores used by the bench's own processes (servers, workers, this process). */
  oursCores: number;
  /** Cores used by everything else: what another run on the machine took. */
  outsideCores: number;
  /**
   * CPU seconds the bench's processes spent in the window. Divided by the items measured, it is a
   * cost that other load changes far less than it changes a rate: on 2 saturated cores, a rate is
   * about 2 / (CPU seconds per item), whatever the latencies.
   */
  oursCpuS: number;
  /** oursCpuS split by process (see MachineSnapshot.byProcess): which one a gap between two runs is in. */
  cpuSByProcess: Map<string, number>;
  /** How long the window lasted. */
  wallS: number;
}

const processNames = new Map<number, string>();
/** Names a child process (and its descendants) in the CPU split by process. */
export function nameProcess(pid: number, name: string): void {
  processNames.set(pid, name);
}

function readStat(): { busy: number; total: number } {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

/** utime + stime + cutime + cstime of every process descended from this one (or this one). */
function readOurs(): { ours: number; procs: number } {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return { ours: NaN, procs: 0 };
  }
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const e of entries) {
    try {
      const text = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may hold spaces.
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(e), Number(f[1]));
      ticks.set(Number(e), Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
    } catch {
      // the process ended while we read
    }
  }
  const isOurs = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) if (p === process.pid) return true;
    return false;
  };
  let ours = 0;
  let procs = 0;
  for (const [pid, t] of ticks)
    if (isOurs(pid)) {
      ours += t;
      procs++;
    }
  return { ours, procs };
}

export function snapshot(): MachineSnapshot {
  return {
    at: nowMs(),
    load1: os.loadavg()[0]!,
    ...readStat(),
    ...readOurs(),
    byProcess: cpuSnapshot(process.pid, processNames),
  };
}

/** Ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on every Linux build that matters). */
const USER_HZ = 100;

export function windowOf(a: MachineSnapshot, b: MachineSnapshot): MachineWindow {
  const cores = os.cpus().length;
  const busyCores = ((b.busy - a.busy) / (b.total - a.total)) * cores;
  const oursCpuS = (b.ours - a.ours) / USER_HZ;
  const wallS = (b.at - a.at) / 1000;
  const oursCores = oursCpuS / wallS;
  return {
    load1Start: a.load1,
    load1End: b.load1,
    busyCores,
    oursCores,
    outsideCores: Math.max(0, busyCores - oursCores),
    oursCpuS,
    cpuSByProcess: new Map([...b.byProcess].map(([name, cpuS]) => [name, cpuS - (a.byProcess.get(name) ?? 0)])),
    wallS,
  };
}

/** Two windows as one: CPU seconds summed, cores averaged over their wall time, load from a's start to b's end. */
export function mergeWindows(a: MachineWindow, b: MachineWindow): MachineWindow {
  const wallS = a.wallS + b.wallS;
  const mean = (x: number, y: number) => (x * a.wallS + y * b.wallS) / wallS;
  const names = new Set([...a.cpuSByProcess.keys(), ...b.cpuSByProcess.keys()]);
  return {
    load1Start: a.load1Start,
    load1End: b.load1End,
    busyCores: mean(a.busyCores, b.busyCores),
    oursCores: mean(a.oursCores, b.oursCores),
    outsideCores: mean(a.outsideCores, b.outsideCores),
    oursCpuS: a.oursCpuS + b.oursCpuS,
    cpuSByProcess: new Map([...names].map((n) => [n, (a.cpuSByProcess.get(n) ?? 0) + (b.cpuSByProcess.get(n) ?? 0)])),
    wallS,
  };
}

/** Runs `fn` and says what the machine did meanwhile. */
export async function watched<T>(fn: () => Promise<T>): Promise<{ value: T; machine: MachineWindow }> {
  const a = snapshot();
  const value = await fn();
  return { value, machine: windowOf(a, snapshot()) };
}
