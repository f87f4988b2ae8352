import fs from 'node:fs';
import path from 'node:path';
import { startProcess, waitUntil } from '../../tools/dev/services/process';

/** What a worker process prints once it polls its task queue. */
export const READY = 'BENCH_WORKER_READY';
/** What the API process prints once it listens, followed by its URL. */
export const API_READY = 'BENCH_API_READY';

export interface BenchChild {
  pid: number;
  /** Highest VmRSS seen by the sampler, in bytes. */
  maxSampledRss(): number;
  /** The kernel's peak RSS for the process's whole life (VmHWM), in bytes. */
  peakRss(): number;
  stop(): Promise<void>;
}
export type WorkerChild = BenchChild;
export interface ApiChild extends BenchChild {
  /** Where the child's API listens, e.g. http://127.0.0.1:40123. */
  url: string;
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // not Linux, or already gone
  }
}

/**
 * Node's flags for a child: `--import tsx`, source maps off as in production (./as-production.mjs), and
 * with BENCH_CPU_PROF_DIR set a V8 CPU profile written there when the child exits (to see where a
 * bench's time goes: open it in Chrome's DevTools).
 */
function nodeArgs(script: string, args: string[]): string[] {
  const profDir = process.env.BENCH_CPU_PROF_DIR;
  const prof = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  return [...prof, '--import', 'tsx', '--import', AS_PRODUCTION, script, ...args];
}

const AS_PRODUCTION = require.resolve('./as-production.mjs');

/** Starts a bench script as `node --import tsx` (no wrapper process, so the pid is the script's). */
async function startChild(
  name: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  ready: string,
): Promise<BenchChild & { output(): string }> {
  const proc = startProcess(name, process.execPath, nodeArgs(script, args), { env, logFile });
  await waitUntil(`${name} ready`, async () => proc.output().includes(ready), {
    timeoutMs: 180_000,
    intervalMs: 100,
    abort: () => (proc.exited() ? `exited:\n${proc.output()}` : undefined),
  });
  const pid = proc.child.pid!;
  let max = 0;
  const sampler = setInterval(() => {
    max = Math.max(max, statusKb(pid, 'VmRSS'));
  }, 250);
  let hwm = 0;
  return {
    pid,
    output: () => proc.output(),
    maxSampledRss: () => max,
    peakRss: () => hwm || statusKb(pid, 'VmHWM'),
    async stop() {
      clearInterval(sampler);
      if (!hwm) hwm = statusKb(pid, 'VmHWM');
      await proc.stop();
    },
  };
}

/** bench/worker-process.ts in its own process. */
export function startWorkerChild(kind: 'service' | 'floor', env: NodeJS.ProcessEnv, logFile: string) {
  const script = path.join(__dirname, '..', 'worker-process.ts');
  return startChild(`${kind} worker`, script, [kind], env, logFile, READY);
}

/** bench/api-process.ts: the service's API (`serveApi`) in its own process, as production runs it. */
export async function startApiChild(env: NodeJS.ProcessEnv, logFile: string): Promise<ApiChild> {
  const script = path.join(__dirname, '..', 'api-process.ts');
  const child = await startChild('API', script, [], env, logFile, API_READY);
  const url = new RegExp(`${API_READY} (\\S+)`).exec(child.output())?.[1];
  if (!url) throw new Error(`API child printed no URL:\n${child.output()}`);
  return { ...child, url };
}
