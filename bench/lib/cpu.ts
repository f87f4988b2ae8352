import fs from 'node:fs';
import os from 'node:os';

/** CPU seconds per process name, over a process and every descendant (Linux /proc; empty elsewhere). */
export type CpuSnapshot = Map<string, number>;

const TICK = 100; // USER_HZ: /proc's clock ticks per second on Linux

function stat(pid: number): { ppid: number; comm: string; ticks: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may hold spaces: the fields after the last ')' are fixed.
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    return { ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null; // gone, or not Linux
  }
}

/**
 * CPU time used so far by `root` and its descendants, summed by name: `names` labels known pids
 * (the API and worker children), the others go by their command (ferretdb, postgres, temporal).
 */
export function cpuSnapshot(root: number, names: ReadonlyMap<number, string>): CpuSnapshot {
  const all = new Map<number, NonNullable<ReturnType<typeof stat>>>();
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return new Map();
  }
  for (const p of pids) {
    const s = stat(Number(p));
    if (s) all.set(Number(p), s);
  }
  const label = (pid: number): string | null => {
    for (let cur = pid, hops = 0; cur > 1 && hops < 50; hops++) {
      if (names.has(cur)) return names.get(cur)!;
      if (cur === root) return pid === root ? 'bench (simulator + script)' : all.get(pid)!.comm;
      cur = all.get(cur)?.ppid ?? 0;
    }
    return null;
  };
  const out: CpuSnapshot = new Map();
  for (const [pid, s] of all) {
    const name = label(pid);
    if (name) out.set(name, (out.get(name) ?? 0) + s.ticks / TICK);
  }
  return out;
}

/** Each name's CPU between two snapshots, as cores busy over `wallS` (processes that ended are missed). */
export function cpuText(before: CpuSnapshot, after: CpuSnapshot, wallS: number): string {
  const rows = [...after]
    .map(([name, s]) => [name, s - (before.get(name) ?? 0)] as const)
    .filter(([, s]) => s >= 0.5)
    .sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, [, s]) => sum + s, 0);
  const cores = os.cpus().length;
  return (
    rows.map(([name, s]) => `${name} ${s.toFixed(1)} s (${(s / wallS).toFixed(2)} core)`).join(', ') +
    `; all ${(total / wallS).toFixed(2)} of ${cores} cores`
  );
}
