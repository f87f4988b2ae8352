import { IntegrationIdSchema } from '../../src/integrations/schema';
import { ipnWorkflowId, paymentWorkflowId } from '../../src/shared/ids';

test('integration ids may contain "-", yet no two (integration, txn) pairs share a payment workflow id', () => {
  // Both integration ids are valid: with a "-" separator both pairs were `payment-acme-eu-X`.
  expect(IntegrationIdSchema.safeParse('acme').success && IntegrationIdSchema.safeParse('acme-eu').success).toBe(true);
  expect(paymentWorkflowId('acme', 'eu-X')).not.toBe(paymentWorkflowId('acme-eu', 'X'));
  expect(paymentWorkflowId('acme_eu', 'X')).not.toBe(paymentWorkflowId('acme', 'eu_X'));
  expect(paymentWorkflowId('acme-eu', 'X')).toBe('payment:acme-eu:X');
});

test('the separator cannot occur in an integration id', () => {
  expect(IntegrationIdSchema.safeParse('acme:eu').success).toBe(false);
});

test('message workflow ids stay readable and distinct across integrations', () => {
  const messageId = '65f000000000000000000001';
  const a = ipnWorkflowId({ integrationId: 'acme', messageId, txnId: 'eu-X', paymentStatus: 'Completed' });
  const b = ipnWorkflowId({ integrationId: 'acme-eu', messageId, txnId: 'X', paymentStatus: 'Completed' });
  expect(a).toBe(`ipn:acme:eu-X:Completed:${messageId}`);
  expect(a).not.toBe(b);
  const noTxn = ipnWorkflowId({ integrationId: 'acme', messageId, txnType: 'new_case' });
  expect(noTxn).toBe(`ipn:acme:new_case:${messageId}`);
});
