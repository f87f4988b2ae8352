import type { ActivityDeps } from './deps';
import { dropSettledRawBodies, type SweepResult } from '../src/retention/raw-bodies';

export function createRetentionActivities({ db, config, logger }: ActivityDeps) {
  return {
    /** One bounded step of the raw-body retention (see dropSettledRawBodies), as of the worker's clock. */
    async dropSettledRawBodies({ after }: { after: string | null }): Promise<SweepResult> {
      const result = await dropSettledRawBodies(db.models, {
        after,
        now: new Date(),
        retentionDays: config.RAW_BODY_RETENTION_DAYS,
      });
      if (result.dropped > 0 || result.stamped > 0) logger.info(result, 'raw body retention');
      return result;
    },
  };
}
