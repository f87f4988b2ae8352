import type { PayPalSimulator } from '../paypal-sim';

/**
 * Mass Pay batches sent under `npm start` reach the simulator's MassPay NVP method (with the demo
 * integration's credentials, set by startDemoProfile), which announces each accepted call the way
 * PayPal does: a Processed IPN, then a Completed one, to the demo integration's listener.
 */
export function startDemoMasspay(sim: PayPalSimulator, listenerUrl: string, payerEmail: string): void {
  const seconds = (name: string, fallback: number) => Number(process.env[name] || fallback) * 1000;
  sim.nvp.masspay.settings = {
    listenerUrl,
    payerEmail,
    processedDelayMs: seconds('IPNFLOW_DEMO_MASSPAY_PROCESSED_SECONDS', 5),
    completedDelayMs: seconds('IPNFLOW_DEMO_MASSPAY_COMPLETED_SECONDS', 20),
  };
}

/** Where the demo integration's Payouts REST app is (its credentials are the simulator's). */
export const DEMO_REST_ENV = 'IPNFLOW_DEMO_REST';

/**
 * Batches sent through Payouts REST under `npm start`: the simulator holds the demo integration's
 * REST app, processes each batch a few seconds after it is created, and posts its signed webhooks
 * to the demo integration's webhook door. The demo payees' fates match the Mass Pay demo's.
 */
export function startDemoPayoutsRest(
  sim: PayPalSimulator,
  webhookUrl: string,
  checkout: { ipnUrl: string; merchantEmail: string },
): void {
  const app = { clientId: 'ipnflow-demo-client', secret: 'ipnflow-demo-secret', webhookId: 'WH-IPNFLOW-DEMO' };
  process.env[`${DEMO_REST_ENV}_CLIENT_ID`] = app.clientId;
  process.env[`${DEMO_REST_ENV}_CLIENT_SECRET`] = app.secret;
  process.env[`${DEMO_REST_ENV}_WEBHOOK_ID`] = app.webhookId;
  // The same app takes top-ups (Orders v2): the capture's IPN and webhook come back to the demo integration.
  sim.rest.addApp({ ...app, webhookUrl, ...checkout });
  sim.rest.autoProcessMs = Number(process.env.IPNFLOW_DEMO_PAYOUTS_SECONDS || 5) * 1000;
  sim.rest.payouts.setOutcome('fail-joe@example.com', { status: 'FAILED', error: 'RECEIVER_UNREGISTERED' });
  sim.rest.payouts.setOutcome('unclaimed-ann@example.com', { status: 'UNCLAIMED' });
}
