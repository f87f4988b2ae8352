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
