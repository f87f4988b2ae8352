/**
 * The worker's entry. With the SDK's reusable V8 context, every workflow execution evaluates the
 * modules its entry imports, zod schemas included, so each workflow loads its own module when an
 * execution of it starts: a payment no longer pays for the Mass Pay and recurring-profile rules.
 * The export names are the workflow types: clients start them by the names and types in src/<feature>/contract.ts.
 */
import type * as ProcessIpn from './messages';
import type * as PaymentLifecycle from './payments';
import type * as RecurringProfile from './profiles';
import type * as MasspayBatch from './masspay';
import type * as RawBodyRetention from './retention';
import type * as Topup from './topups';

export async function processIpn(...args: Parameters<typeof ProcessIpn.processIpn>) {
  return (await import(/* webpackMode: "eager" */ './messages')).processIpn(...args);
}

export async function paymentLifecycle(...args: Parameters<typeof PaymentLifecycle.paymentLifecycle>) {
  return (await import(/* webpackMode: "eager" */ './payments')).paymentLifecycle(...args);
}

export async function recurringProfile(...args: Parameters<typeof RecurringProfile.recurringProfile>) {
  return (await import(/* webpackMode: "eager" */ './profiles')).recurringProfile(...args);
}

export async function masspayBatch(...args: Parameters<typeof MasspayBatch.masspayBatch>) {
  return (await import(/* webpackMode: "eager" */ './masspay')).masspayBatch(...args);
}

export async function rawBodyRetention(...args: Parameters<typeof RawBodyRetention.rawBodyRetention>) {
  return (await import(/* webpackMode: "eager" */ './retention')).rawBodyRetention(...args);
}

export async function topup(...args: Parameters<typeof Topup.topup>) {
  return (await import(/* webpackMode: "eager" */ './topups')).topup(...args);
}
