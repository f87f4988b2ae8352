import type { Models } from '../shared/db/models';
import type { MatchBy } from '../integrations/schema';
import { TopupIdSchema } from '../topups/contract';
import { findCustomerForPayer } from './store';

/** What a payment says about its payer, and (when the caller has it) how its integration matches. */
export interface PayerToMatch {
  custom: string | null;
  payerEmail: string | null;
  /** The integration's, when the caller has it already (loaded with the message). */
  matchBy?: MatchBy;
}

/** The customer a payment credits, or null when none matches (the payment is then held for a person). */
export async function matchPayer(models: Models, integrationId: string, payer: PayerToMatch): Promise<string | null> {
  const { custom, payerEmail, matchBy } = payer;
  // A top-up's capture (its IPN's custom is the top-up id, ours and unambiguous): the top-up's
  // customer, whatever matchBy says, so this credit and the top-up's share one key, account and amount.
  if (custom && TopupIdSchema.safeParse(custom).success) {
    const topup = await models.Topup.findById(custom, { integrationId: 1, customerId: 1 }).lean();
    if (topup?.integrationId === integrationId) return topup.customerId;
  }
  return findCustomerForPayer(models, integrationId, { custom, payerEmail }, matchBy);
}
