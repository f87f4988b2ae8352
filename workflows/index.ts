export { processIpn } from './process-ipn';
export { paymentLifecycle } from './payment-lifecycle';
