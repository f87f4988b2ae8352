import type { ActivityDeps } from './deps';
import { createLedgerActivities } from './ledger';
import { createMessageActivities } from './messages';
import { createPaymentActivities } from './payments';
import { createProfileActivities } from './profiles';
import { createPayoutActivities } from './masspay';
import { createMasspayRestActivities } from './masspay-rest';
import { createRetentionActivities } from './retention';
import { createOperatorActivities } from './operators';
import { createTopupActivities } from './topups';

export type { ActivityDeps };

export function createActivities(deps: ActivityDeps) {
  const messages = createMessageActivities(deps);
  const ledger = createLedgerActivities(deps);
  return {
    ...messages,
    // A payment's merged steps load its message and post through these same activities (one cache of bodies).
    ...createPaymentActivities(deps, { loadMessage: messages.loadMessage, postToLedger: ledger.postToLedger }),
    ...ledger,
    ...createProfileActivities(deps),
    ...createPayoutActivities(deps),
    ...createMasspayRestActivities(deps),
    ...createRetentionActivities(deps),
    ...createOperatorActivities(deps),
    ...createTopupActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
