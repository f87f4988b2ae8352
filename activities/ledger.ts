import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { Ledger, LedgerError, type PostingRequest, type PostingResult } from '../src/shared/ledger';

export function createLedgerActivities({ db, logger }: ActivityDeps) {
  const ledger = new Ledger(db.models);
  return {
    /**
     * Idempotent by key: a retry after a crash (the write landed, the report did not) finds the
     * entry and answers as if it had just been written.
     */
    async postToLedger(req: PostingRequest): Promise<PostingResult> {
      try {
        const result = await ledger.post(req);
        logger.info(
          {
            key: req.idempotencyKey,
            amountMinor: req.amountMinor,
            currency: req.currency,
            customerId: req.customerId,
            applied: result.applied,
          },
          'ledger posting',
        );
        return result;
      } catch (err) {
        // Contention passes: Temporal retries it. A conflict never will: the payment holds instead.
        if (err instanceof LedgerError && !err.transient)
          throw ApplicationFailure.nonRetryable(err.message, 'LedgerError');
        throw err;
      }
    },
  };
}

export type LedgerActivities = ReturnType<typeof createLedgerActivities>;
