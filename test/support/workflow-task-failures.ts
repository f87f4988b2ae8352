import type { Client } from '@temporalio/client';

/** The WorkflowTaskFailed events of one workflow's history (all runs kept under its id), as readable lines. */
export async function workflowTaskFailures(client: Client, workflowId: string, runId?: string): Promise<string[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.workflowTaskFailedEventAttributes)
    .map((e) => `${workflowId}: ${e.workflowTaskFailedEventAttributes!.failure?.message ?? 'workflow task failed'}`);
}

/**
 * Every WorkflowTaskFailed in a namespace: a workflow task that throws retries forever and wedges
 * its workflow, so after a run none may exist, whatever the tests sent.
 */
export async function namespaceWorkflowTaskFailures(client: Client): Promise<{ scanned: number; failures: string[] }> {
  const failures: string[] = [];
  let scanned = 0;
  for await (const wf of client.workflow.list()) {
    scanned++;
    failures.push(...(await workflowTaskFailures(client, wf.workflowId, wf.runId)));
  }
  return { scanned, failures };
}
