import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { getIntegration } from '../src/integrations/store';
import { checkoutGateway, CheckoutRefused } from '../src/topups/paypal';
import { TopupStateSchema, type PayPalView, type TopupState } from '../src/topups/state';

/**
 * A top-up's I/O: its saved state, and PayPal (capture, read back). Everything a call needs is read
 * here by the top-up's id, so no PayPal reference, payer id or credential travels in the workflow's
 * history. A transport failure or PayPal's 5xx is thrown for Temporal to retry (the capture with the
 * same request id); a refusal for good is thrown non-retryable.
 */
export function createTopupActivities({ db, config }: ActivityDeps) {
  const { Topup } = db.models;

  async function refOf(topupId: string) {
    const doc = await Topup.findById(topupId).lean();
    if (!doc?.paypalRef) throw ApplicationFailure.nonRetryable(`no top-up ${topupId} with a PayPal order`, 'NoTopup');
    const integration = await getIntegration(db.models, doc.integrationId);
    if (!integration) throw ApplicationFailure.nonRetryable(`no integration ${doc.integrationId}`, 'NoTopup');
    const gateway = checkoutGateway(config, integration);
    const ref = {
      topupId,
      api: doc.api as 'orders' | 'express',
      paypalRef: doc.paypalRef,
      amountMinor: doc.amountMinor,
      currency: doc.currency,
    };
    return { gateway, ref };
  }

  const refusedForGood = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (err instanceof CheckoutRefused) throw ApplicationFailure.nonRetryable(err.message, 'CheckoutRefused');
      throw err;
    }
  };

  return {
    async loadTopupState(topupId: string): Promise<TopupState> {
      const doc = await Topup.findById(topupId, { snapshot: 1 }).lean();
      if (!doc?.snapshot) throw ApplicationFailure.nonRetryable(`no top-up ${topupId}`, 'NoTopup');
      return TopupStateSchema.parse(doc.snapshot);
    },

    async saveTopupState(state: TopupState): Promise<void> {
      await Topup.updateOne(
        { _id: state.id },
        {
          $set: {
            phase: state.phase,
            captureId: state.capture?.id ?? null,
            creditEntryId: state.creditEntryId,
            snapshot: state,
          },
        },
      );
    },

    async captureTopup(topupId: string): Promise<PayPalView> {
      const { gateway, ref } = await refOf(topupId);
      return refusedForGood(() => gateway.capture(ref));
    },

    async readTopup(topupId: string): Promise<PayPalView> {
      const { gateway, ref } = await refOf(topupId);
      return refusedForGood(() => gateway.read(ref));
    },
  };
}
