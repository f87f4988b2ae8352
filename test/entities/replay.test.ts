import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';

const DIR = path.join(__dirname, '..', 'histories');
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.json'));

test('recorded histories exist for the message workflow and the entities', () => {
  // payment-lifecycle-door-: refunds, reversals and disputes through the payment's own door (ipnMessage).
  const kinds = [
    'process-ipn-',
    'payment-lifecycle-',
    'payment-lifecycle-door-',
    'recurring-profile-',
    'masspay-batch-',
    'topup-',
  ];
  for (const kind of kinds) {
    expect([kind, files.some((f) => f.startsWith(kind))]).toEqual([kind, true]);
  }
});

// Replays real histories (recorded by scripts/record-histories.ts) against today's workflow code:
// a non-deterministic change fails here before it can break workflows running in production.
test.each(files)('replays %s deterministically', async (file) => {
  const { workflowId, history } = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
  await Worker.runReplayHistory(
    { workflowBundle: { codePath: process.env.IPNFLOW_TEST_WORKFLOW_BUNDLE! } },
    history,
    workflowId,
  );
});
