import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { getIntegration } from '../src/integrations/store';
import { checkoutGateway, CheckoutRefused } from '../src/topups/paypal';
import { TopupStateSchema, type PayPalView, type TopupState } from '../src/topups/state';
import type { Integration } from '../src/integrations/schema';

type TopupRef = Pick<TopupState, 'id' | 'integrationId' | 'api' | 'paypalRef' | 'amountMinor' | 'currency'>;
const INTEGRATION_TTL_MS = 2_000;

/**
 * A top-up's I/O: its saved state, and PayPal (capture, read back). A call gets PayPal's ids and the
 * amounts from the workflow; credentials are read here from the environment (never in a history),
 * and no payer data is kept anywhere. A transport failure or PayPal's 5xx is thrown for Temporal to
 * retry (the capture with the same request id); a refusal for good is thrown non-retryable.
 */
export function createTopupActivities({ db, config }: ActivityDeps) {
  const { Topup } = db.models;

  // The integration a call goes through, kept for a couple of seconds: one read per burst of calls,
  // not per call; a change of credentials or receivers applies within the TTL.
  const integrations = new Map<string, { integration: Integration; until: number }>();
  async function integrationOf(id: string): Promise<Integration> {
    const hit = integrations.get(id);
    if (hit && hit.until > Date.now()) return hit.integration;
    const integration = await getIntegration(db.models, id);
    if (!integration) throw ApplicationFailure.nonRetryable(`no integration ${id}`, 'NoTopup');
    if (integrations.size > 1_000) integrations.clear();
    integrations.set(id, { integration, until: Date.now() + INTEGRATION_TTL_MS });
    return integration;
  }

  /** What PayPal is asked about: from the top-up's state (PayPal's ids and amounts, no secret, no payer data). */
  async function refOf(t: TopupRef) {
    const gateway = checkoutGateway(config, await integrationOf(t.integrationId));
    return {
      gateway,
      ref: { topupId: t.id, api: t.api, paypalRef: t.paypalRef, amountMinor: t.amountMinor, currency: t.currency },
    };
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

    async captureTopup(topup: TopupRef): Promise<PayPalView> {
      const { gateway, ref } = await refOf(topup);
      return refusedForGood(() => gateway.capture(ref));
    },

    async readTopup(topup: TopupRef): Promise<PayPalView> {
      const { gateway, ref } = await refOf(topup);
      return refusedForGood(() => gateway.read(ref));
    },
  };
}
