export { processIpn } from './process-ipn';
export { paymentLifecycle } from './payment-lifecycle';
export { masspayBatch } from './masspay-batch';
