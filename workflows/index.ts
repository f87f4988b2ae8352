export { processIpn } from './process-ipn';
export { paymentLifecycle } from './payment-lifecycle';
export { recurringProfile } from './recurring-profile';
export { masspayBatch } from './masspay-batch';
