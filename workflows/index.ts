/**
 * The worker's entry. With the SDK's reusable V8 context, every workflow execution evaluates the
 * modules its entry imports, zod schemas included, so each workflow loads its own module when an
 * execution of it starts: a payment no longer pays for the Mass Pay and recurring-profile rules.
 * The export names are the workflow types: clients start them by the names and types in src/contracts.
 */
import type * as ProcessIpn from './process-ipn';
import type * as PaymentLifecycle from './payment-lifecycle';
import type * as RecurringProfile from './recurring-profile';
import type * as MasspayBatch from './masspay-batch';
import type * as RawBodyRetention from './raw-body-retention';

export async function processIpn(...args: Parameters<typeof ProcessIpn.processIpn>) {
  return (await import(/* webpackMode: "eager" */ './process-ipn')).processIpn(...args);
}

export async function paymentLifecycle(...args: Parameters<typeof PaymentLifecycle.paymentLifecycle>) {
  return (await import(/* webpackMode: "eager" */ './payment-lifecycle')).paymentLifecycle(...args);
}

export async function recurringProfile(...args: Parameters<typeof RecurringProfile.recurringProfile>) {
  return (await import(/* webpackMode: "eager" */ './recurring-profile')).recurringProfile(...args);
}

export async function masspayBatch(...args: Parameters<typeof MasspayBatch.masspayBatch>) {
  return (await import(/* webpackMode: "eager" */ './masspay-batch')).masspayBatch(...args);
}

export async function rawBodyRetention(...args: Parameters<typeof RawBodyRetention.rawBodyRetention>) {
  return (await import(/* webpackMode: "eager" */ './raw-body-retention')).rawBodyRetention(...args);
}
