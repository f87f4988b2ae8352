import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import fs from 'node:fs';
import { startWorkerChild } from '../../bench/lib/children';
import { closedLoop, nowMs, type RunStats } from '../../bench/lib/load';
import type { floorIpn } from '../../bench/floor/workflows';
import { sample, withFields } from './traffic';
import type { PayPalSimulator } from '../paypal-sim';

/** Concurrency of the measured runs: bench/run.ts's E2E_CONCURRENCY, so the figures compare with `npm run bench`. */
export const CONCURRENCY = 4;

const quiet = () => {};
const quietLogger = { trace: quiet, debug: quiet, info: quiet, warn: quiet, log: quiet, error: console.error };

export async function bundleFloor(dir: string): Promise<string> {
  const file = path.join(dir, 'floor-workflows.js');
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../bench/floor/workflows'),
    logger: quietLogger,
  });
  fs.writeFileSync(file, code);
  return file;
}

/**
 * bench/run.ts's workflow floor (a postback and one insert, its own worker process) on one Temporal server:
 * `n` workflows at CONCURRENCY, start -> result.
 */
export async function measureFloor(opts: {
  address: string;
  namespace: string;
  mongoUri: string;
  bundle: string;
  sim: PayPalSimulator;
  n: number;
  label: string;
  logDir: string;
}): Promise<RunStats> {
  const taskQueue = `rehearse-floor-${opts.label}`;
  const worker = await startWorkerChild(
    'floor',
    {
      ...process.env,
      TEMPORAL_ADDRESS: opts.address,
      MONGODB_URI: opts.mongoUri,
      MONGODB_DB: `rehearse-floor-${opts.label}`,
      BENCH_WORKFLOW_BUNDLE: opts.bundle,
      BENCH_TASK_QUEUE: taskQueue,
      BENCH_VERIFY_URL: opts.sim.verifyUrl,
    },
    path.join(opts.logDir, `floor-worker-${opts.label}.log`),
  );
  const connection = await Connection.connect({ address: opts.address });
  const client = new Client({ connection, namespace: opts.namespace });
  const base = sample('web_accept_completed_ipn_simulator_01');
  const one = async (id: string) => {
    const raw = withFields(base, { txn_id: id });
    opts.sim.registerMessage(raw);
    const t0 = nowMs();
    const answer = await client.workflow.execute<typeof floorIpn>('floorIpn', {
      taskQueue,
      workflowId: `rehearse-floor-${id}`,
      args: [raw.toString('latin1')],
    });
    if (answer !== 'VERIFIED') throw new Error(`floor ${id}: ${answer}`);
    return nowMs() - t0;
  };
  try {
    const tag = `${opts.label}${Date.now().toString(36)}`;
    await closedLoop(8, CONCURRENCY, (i) => one(`W${tag}${i}`)); // warm: the first tasks load the bundle
    return await closedLoop(opts.n, CONCURRENCY, (i) => one(`F${tag}${i}`));
  } finally {
    await connection.close();
    await worker.stop();
  }
}
