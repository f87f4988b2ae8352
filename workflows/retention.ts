import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RawBodyRetentionInput, RawBodyRetentionResult } from '../src/retention/contract';
import { storeSweep } from './shared/activity-options';

// A step walks up to 5,000 messages without their bytes.
const act = proxyActivities<Activities>(storeSweep);

/** Steps per run before continuing as new: keeps the history short on a large store. */
const STEPS_PER_RUN = 200;

/**
 * One pass of the raw-body retention over every message received before the cutoff, in bounded
 * `_id` steps (see dropSettledRawBodies). Started daily by the `raw-body-retention` Schedule
 * (src/retention/schedule.ts), which skips a day while the last pass is still running.
 */
export async function rawBodyRetention(input: RawBodyRetentionInput = {}): Promise<RawBodyRetentionResult> {
  let after = input.after ?? null;
  const total = { dropped: input.dropped ?? 0, stamped: 0, scanned: 0 };
  for (let step = 0; step < STEPS_PER_RUN; step++) {
    const result = await act.dropSettledRawBodies({ after });
    total.dropped += result.dropped;
    total.stamped += result.stamped;
    total.scanned += result.scanned;
    if (result.next === null) return total;
    after = result.next;
  }
  return continueAsNew<typeof rawBodyRetention>({ after, dropped: total.dropped });
}
