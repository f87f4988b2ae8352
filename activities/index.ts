import type { Client } from '@temporalio/client';
import type { Config } from '../src/config';
import type { Database } from '../src/db/connection';
import type { Logger } from '../src/logger';
import { createLedgerActivities } from './ledger';
import { createMessageActivities } from './messages';
import { createPaymentActivities } from './payments';
import { createProfileActivities } from './profiles';
import { createPayoutActivities } from './payouts';
import { createVerifyActivities } from './verify';
import { createRetentionActivities } from './retention';

export interface ActivityDeps {
  db: Database;
  client: Client;
  config: Config;
  logger: Logger;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createMessageActivities(deps),
    ...createVerifyActivities(deps),
    ...createPaymentActivities(deps),
    ...createLedgerActivities(deps),
    ...createProfileActivities(deps),
    ...createPayoutActivities(deps),
    ...createRetentionActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
