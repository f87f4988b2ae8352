export { startPayPalSimulator } from './server';
export type {
  Delivery,
  DeliveryAttempt,
  DeliveryOutcome,
  DeliveryState,
  Fault,
  FaultKind,
  PayPalSimulator,
  PayPalSimulatorOptions,
  PostbackRecord,
  SimLogger,
} from './types';
export { answerFor, NOTIFY_VALIDATE_PREFIX, VERIFY_PATH } from './postback';
export { PAYPAL_IPN_USER_AGENT } from './listener-client';
export { withResendFlag } from './resend';
export {
  DEFAULT_RESEND_SCHEDULE_MS,
  MAX_DELIVERIES,
  ORIGINAL_ATTEMPT_TIMEOUT_MS,
  RESEND_ATTEMPT_TIMEOUT_MS,
  RESEND_WINDOW_MS,
} from './schedule';
export { FATAL_FAILURE_BODY } from './faults';
