import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { replaceField } from '../cli/ipn';
import { formatPayPalDate } from '../../src/profiles/state';
import type { PayPalSimulator } from '../paypal-sim';

export const DEMO_PROFILE_ID = 'I-DEMO00000001';
/** The demo integration's `nvpCredentialsEnv`: `npm start` sets these variables to the simulator's credentials. */
export const DEMO_NVP_ENV = 'IPNFLOW_DEMO_NVP';

const SAMPLES = path.resolve(__dirname, '../../test/fixtures/ipn');
const enc = encodeURIComponent;

/**
 * A recurring profile to watch under `npm start`: the simulator (as PayPal) knows it, announces it
 * with `recurring_payment_profile_created`, then bills a cycle every `cycleSeconds` and sends the
 * `recurring_payment` IPN, as PayPal does. Operators can suspend, reactivate, bill or cancel it
 * through the admin API or the Web UI; the simulator answers the NVP calls. Returns a stop function.
 */
export function startDemoProfile(sim: PayPalSimulator, listenerUrl: string, cycleSeconds: number): () => void {
  const credentials = { username: 'demo_api1.example.com', password: crypto.randomBytes(12).toString('hex') };
  const signature = crypto.randomBytes(24).toString('hex');
  sim.nvp.credentials = { ...credentials, signature };
  process.env[`${DEMO_NVP_ENV}_USERNAME`] = credentials.username;
  process.env[`${DEMO_NVP_ENV}_PASSWORD`] = credentials.password;
  process.env[`${DEMO_NVP_ENV}_SIGNATURE`] = signature;

  const next = () => new Date(Date.now() + cycleSeconds * 1000).toISOString();
  sim.nvp.upsertProfile({
    id: DEMO_PROFILE_ID,
    status: 'Active',
    currency: 'USD',
    amountPerCycleMinor: 2995,
    outstandingMinor: 0,
    failedPaymentCount: 0,
    nextBillingDate: next(),
    listenerUrl,
    receiverEmail: 'seller@paypalsandbox.com',
    payerEmail: 'buyer@paypalsandbox.com',
  });
  const message = (sample: string, fields: Record<string, string>) =>
    Object.entries({
      recurring_payment_id: DEMO_PROFILE_ID,
      payer_email: enc('buyer@paypalsandbox.com'),
      receiver_email: enc('seller@paypalsandbox.com'),
      next_payment_date: enc(formatPayPalDate(next())),
      ...fields,
    }).reduce<Buffer>(
      (body, [field, value]) =>
        replaceField(body, field, value) ?? Buffer.concat([body, Buffer.from(`&${field}=${value}`)]),
      readFileSync(path.join(SAMPLES, `${sample}.ipn`)),
    );
  const send = (body: Buffer) => void sim.sendIpn({ listenerUrl, body }).done.catch(() => {});

  send(
    message('recurring_payment_profile_created_01', { time_created: enc(formatPayPalDate(new Date().toISOString())) }),
  );
  const timer = setInterval(() => {
    // Only while PayPal (the simulator) still bills it: a suspended or cancelled profile pays nothing.
    const profile = sim.nvp.profiles.get(DEMO_PROFILE_ID);
    if (profile?.status !== 'Active') return;
    profile.nextBillingDate = next();
    const now = enc(formatPayPalDate(new Date().toISOString()));
    const txn = `DEMO${Date.now().toString(36).toUpperCase()}`;
    send(message('recurring_payment_completed_01', { txn_id: txn, payment_date: now, mc_gross: '29.95' }));
  }, cycleSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
