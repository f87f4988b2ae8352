import fs from 'node:fs';
import path from 'node:path';
import { startProcess, waitUntil } from '../../tools/dev/services/process';

/** What a worker process prints once it polls its task queue. */
export const READY = 'BENCH_WORKER_READY';

export interface WorkerChild {
  pid: number;
  /** Highest VmRSS seen by the sampler, in bytes. */
  maxSampledRss(): number;
  /** The kernel's peak RSS for the process's whole life (VmHWM), in bytes. */
  peakRss(): number;
  stop(): Promise<void>;
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // not Linux, or already gone
  }
}

/** Starts bench/worker-process.ts as `node --import tsx` (no wrapper process, so the pid is the worker's). */
export async function startWorkerChild(
  kind: 'service' | 'floor',
  env: NodeJS.ProcessEnv,
  logFile: string,
): Promise<WorkerChild> {
  const script = path.join(__dirname, '..', 'worker-process.ts');
  const proc = startProcess(`${kind} worker`, process.execPath, ['--import', 'tsx', script, kind], { env, logFile });
  await waitUntil(`${kind} worker ready`, async () => proc.output().includes(READY), {
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
    maxSampledRss: () => max,
    peakRss: () => hwm || statusKb(pid, 'VmHWM'),
    async stop() {
      clearInterval(sampler);
      if (!hwm) hwm = statusKb(pid, 'VmHWM');
      await proc.stop();
    },
  };
}
