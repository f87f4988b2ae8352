import fs from 'node:fs';
import { Connection, Client } from '@temporalio/client';
import { namespaceWorkflowTaskFailures } from './workflow-task-failures';

export default async function globalTeardown(): Promise<void> {
  const stack = globalThis.__IPNFLOW_STACK__;
  if (!stack) return;
  try {
    await assertNoWorkflowTaskFailed();
  } finally {
    await Promise.all([stack.temporal?.stop(), stack.mongo?.stop()]);
    fs.rmSync(stack.dir, { recursive: true, force: true });
  }
}

/**
 * The suite-wide guard: no workflow any test started may have a failed workflow task. Only on our
 * own embedded server, where every workflow in the namespace is this run's.
 */
async function assertNoWorkflowTaskFailed(): Promise<void> {
  if (!globalThis.__IPNFLOW_STACK__?.temporal) return;
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS });
  try {
    const { scanned, failures } = await namespaceWorkflowTaskFailures(new Client({ connection }));
    process.stderr.write(
      `[test stack] no-WorkflowTaskFailed guard: scanned ${scanned} workflows, ${failures.length} failed tasks\n`,
    );
    if (failures.length > 0)
      throw new Error(`WorkflowTaskFailed in ${failures.length} place(s):\n${failures.slice(0, 20).join('\n')}`);
  } finally {
    await connection.close();
  }
}
