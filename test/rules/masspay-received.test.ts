import { receivedMasspayEvents } from '../../src/masspay/received';
import { summarizeIpn } from '../../src/messages/summary';
import { decodeIpn } from '../../src/messages/decode';
import { sample, withFields } from '../support/stack';

/** Which Mass Pay items are payments to us, and the payment event each becomes. */
const integration = { id: 'shop', receiverEmails: ['us@example.com'], allowedCurrencies: ['USD' as const] };
const itemPaidToUs = (status: string, extra: Record<string, string> = {}) =>
  summarizeIpn(
    decodeIpn(
      withFields(sample('masspay_processed_02'), {
        receiver_email_1: 'US%40example.com',
        masspay_txn_id_1: 'MP1',
        status_1: status,
        ...extra,
      }),
    ).fields,
  );

test.each([
  ['Completed', 'payment', 'MP1', 'Completed'],
  ['Unclaimed', 'payment', 'MP1', 'Pending'],
  ['Pending', 'payment', 'MP1', 'Pending'],
  ['Failed', 'payment', 'MP1', 'Failed'],
  ['Blocked', 'payment', 'MP1', 'Failed'],
  ['Returned', 'reversal', 'MP1-Returned', 'Reversed'],
  ['Reversed', 'reversal', 'MP1-Reversed', 'Reversed'],
])(
  'an item %s becomes a %s event %s (%s), the whole gross, for the payment MP1',
  (status, kind, txnId, paymentStatus) => {
    const { events } = receivedMasspayEvents(itemPaidToUs(status), integration, { messageId: 'm1', receivedAt: 'now' });
    expect(events).toEqual([
      expect.objectContaining({ kind, txnId, paymentTxnId: 'MP1', paymentStatus, grossMinor: 1000, creditMinor: 1000 }),
    ]);
  },
);

test('items paid to others are not ours; no txn id: not followed; a currency not allowed is flagged', () => {
  const meta = { messageId: 'm1', receivedAt: 'now' };
  expect(
    receivedMasspayEvents(itemPaidToUs('Completed', { receiver_email_1: 'x%40y.com' }), integration, meta).events,
  ).toEqual([]);
  expect(receivedMasspayEvents(itemPaidToUs('Completed', { masspay_txn_id_1: '' }), integration, meta).events).toEqual(
    [],
  );
  const eur = receivedMasspayEvents(itemPaidToUs('Completed', { mc_currency_1: 'EUR' }), integration, meta).events;
  expect(eur[0]!.flags).toEqual(['currency_not_allowed']);
});
