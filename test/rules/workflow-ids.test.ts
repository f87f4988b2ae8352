import { IntegrationIdSchema } from '../../src/integrations/schema';
import {
  adjustmentKey,
  creditKey,
  ipnWorkflowId,
  paymentDocId,
  paymentWorkflowId,
  profileDocId,
  profileTxnDocId,
} from '../../src/shared/ids';

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

test('a payment and a profile crediting the same txn use one ledger key, in the form the ledger recorded', () => {
  expect(creditKey('acme', 'TX-1')).toBe('credit:acme:TX-1');
  expect(adjustmentKey('refund', 'acme', 'TX-2', 'Refunded')).toBe('refund:acme:TX-2:Refunded');
  // Document ids are the hot path's _id lookups: the same `<integration>:<id>` form as the stored documents.
  expect([paymentDocId('acme', 'TX-1'), profileDocId('acme', 'I-1'), profileTxnDocId('acme', 'TX-1')]).toEqual([
    'acme:TX-1',
    'acme:I-1',
    'acme:TX-1',
  ]);
});
