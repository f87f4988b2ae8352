import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../shared/config';
import { RAW_BODY_RETENTION } from './contract';

/** One schedule per task queue: tests (and stacks sharing a Temporal server) each sweep their own store. */
export const rawRetentionScheduleId = (config: Config) => `raw-body-retention:${config.TEMPORAL_TASK_QUEUE}`;

/**
 * The daily raw-body retention, as a Temporal Schedule rather than a timer in each worker: one pass
 * at a time however many workers run (a pass still running skips the next), retried where it
 * failed, and visible in the Web UI next to the workflows it sweeps after. Created once; the
 * retention itself is read by the activity from the worker's configuration on each pass.
 */
export async function ensureRawRetentionSchedule(client: Client, config: Config): Promise<void> {
  const scheduleId = rawRetentionScheduleId(config);
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '1 day' }] },
      action: {
        type: 'startWorkflow',
        workflowType: RAW_BODY_RETENTION,
        workflowId: scheduleId,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        args: [{}],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
}
