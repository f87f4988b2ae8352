import type { Models } from '../../src/shared/db/models';
import { saveIntegration } from '../../src/integrations/store';
import { saveCustomer } from '../../src/customers/store';
import { DEMO_NVP_ENV } from './demo-profile';
import { DEMO_REST_ENV } from './demo-masspay';

/** Top-ups from the portal or the hosted page: Orders v2 with the simulator's REST app (see demo-masspay.ts). */
const DEMO_TOPUPS = {
  currencies: ['USD', 'EUR'],
  minMinor: { USD: 500, EUR: 500 },
  maxMinor: { USD: 50_000, EUR: 50_000 },
  choicesMinor: { USD: [1_000, 2_500, 5_000], EUR: [1_000, 2_500] },
};

/** The audit's actor for what `npm start` creates by itself. */
const SEEDER = 'npm start (demo seed)';

/**
 * A sandbox integration matching PayPal's IPN simulator messages, and a customer paying as the
 * simulator's buyer: enough to watch a payment flow minutes after `npm start`. Created once;
 * operators' later edits are kept.
 */
export async function seedDemo(models: Models): Promise<{ integrationId: string; customerId: string }> {
  const integrationId = 'demo';
  const customerId = 'demo-customer';
  if (!(await models.Integration.exists({ _id: integrationId }))) {
    await saveIntegration(
      models,
      integrationId,
      {
        name: 'Demo (sandbox, PayPal IPN simulator messages)',
        mode: 'sandbox',
        allowedCurrencies: ['USD', 'EUR', 'CAD', 'GBP'],
        receiverEmails: ['seller@paypalsandbox.com'],
        // The demo recurring profile's operator actions go to the simulator with these (see demo-profile.ts).
        nvpCredentialsEnv: DEMO_NVP_ENV,
        // Payouts go through Payouts REST by default (the simulator's app, see demo-masspay.ts).
        payoutsRestEnv: DEMO_REST_ENV,
        topups: DEMO_TOPUPS,
      },
      SEEDER,
    );
  } else {
    // Seeded before top-ups existed: they are added (audited), the rest as operators left it.
    const doc = await models.Integration.findById(integrationId).lean();
    if (doc && !doc.topups) {
      const { _id, createdAt: _c, updatedAt: _u, ...kept } = doc as typeof doc & { createdAt?: Date; updatedAt?: Date };
      await saveIntegration(models, integrationId, { ...kept, topups: DEMO_TOPUPS }, SEEDER);
    }
  }
  if (!(await models.Customer.exists({ _id: customerId }))) {
    // Payouts go only to a customer's registered addresses: the Mass Pay demo in docs/operating.md pays these
    // (the simulator completes, fails and leaves unclaimed a payment by its address).
    const payees = ['jane@example.com', 'fail-joe@example.com', 'unclaimed-ann@example.com'];
    const demoCustomer = { name: 'Demo VoIP customer', paypalEmails: ['buyer@paypalsandbox.com', ...payees] };
    await saveCustomer(models, customerId, demoCustomer, SEEDER);
  }
  return { integrationId, customerId };
}
