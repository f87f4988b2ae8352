import type { LoadedMessage } from '../../activities/messages';
import { IntegrationInputSchema, type Integration } from '../../src/integrations/schema';
import { classify } from '../../src/messages/classify';
import { readIpn } from '../../src/messages/read';
import { planFirstTake } from '../../src/payments/first-take';
import { decidePayment } from '../../src/payments/rules';
import { initialPaymentState, type PaymentState } from '../../src/payments/state';
import { sample } from '../support/samples';
import { withFields } from '../support/stack';

/**
 * Which first messages the step that loads a payment takes at once (posting and saving), and which it
 * leaves to the workflow's own steps. What it takes must be exactly what the rules decide; the
 * workflow compares (test/entities/payments-invariants.test.ts shows a plain payment taken in one step).
 */
const TXN = '593976436';
const NOW = '2026-12-06T20:00:00.000Z';

const integrationOf = (over: Record<string, unknown> = {}): Integration => ({
  ...IntegrationInputSchema.parse({
    name: 'Shop',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['seller@paypalsandbox.com'],
    ...over,
  }),
  id: 'shop',
});

/** The sample payment (12.34 USD, custom=xyz123, test_ipn=1) as the load returns it: proven, payer matched. */
function loaded(fields: Record<string, string> = {}, over: Partial<LoadedMessage> = {}): LoadedMessage {
  const { summary } = readIpn(withFields(sample('web_accept_completed_ipn_simulator_01'), fields));
  return {
    integration: integrationOf(),
    summary,
    route: classify(summary),
    decodeError: null,
    duplicateOf: null,
    receivedAt: NOW,
    firstVerdict: 'VERIFIED',
    payerMatch: { custom: summary.custom, payerEmail: summary.payerEmail, customerId: 'c1' },
    ...over,
  };
}

const plan = (msg: LoadedMessage, saved: PaymentState | null = null, paymentTxnId = TXN) =>
  planFirstTake({
    messageId: 'm1',
    msg,
    saved,
    integrationId: 'shop',
    paymentTxnId,
    orphanGraceSeconds: 3600,
    decidedAt: NOW,
  });

describe('planFirstTake', () => {
  test('a proven payment whose payer the load matched: its posting, the credited state, its outcome', () => {
    const p = plan(loaded());
    expect(p?.posting).toMatchObject({ customerId: 'c1', amountMinor: 1234, currency: 'USD', txnId: TXN });
    expect(p?.state).toMatchObject({ phase: 'credited', creditedMinor: 1234, customerId: 'c1' });
    expect(p?.outcome).toMatchObject({ messageId: 'm1', outcome: 'applied:credited', flags: [] });
    expect(p?.outcome.routedEvent).toMatchObject({ messageId: 'm1', txnId: TXN, grossMinor: 1234 });
  });

  test('what it plans is what the rules decide once the posting is made, at the same clock', () => {
    const p = plan(loaded())!;
    const event = p.outcome.routedEvent!;
    const ctx = { now: NOW, orphanGraceSeconds: 3600 };
    const facts = { proof: { ok: true as const }, customerMatch: 'c1' };
    const key = p.posting.idempotencyKey;
    const after = decidePayment(initialPaymentState('shop', TXN), { type: 'ipn', event }, facts, ctx);
    expect(after).toMatchObject({ kind: 'need', need: { fact: 'posting', posting: p.posting } });
    const done = decidePayment(
      initialPaymentState('shop', TXN),
      { type: 'ipn', event },
      { ...facts, postings: { [key]: { ok: true } } },
      ctx,
    );
    expect(done).toMatchObject({ kind: 'done', state: p.state, effects: [] });
  });

  test('an integration that verifies nothing: taken, flagged unverified, as examineMessage flags it', () => {
    const msg = loaded({}, { integration: integrationOf({ verifyTransaction: false }), firstVerdict: undefined });
    expect(plan(msg)?.outcome.flags).toContain('unverified');
  });

  test.each<[string, LoadedMessage]>([
    ['PayPal answered INVALID', loaded({}, { firstVerdict: 'INVALID' })],
    ['PayPal did not answer the postback tried with the load', loaded({}, { firstVerdict: null })],
    ['the workflow may not take it', loaded({}, { refusal: 'dispatched elsewhere' })],
    ['its integration was deleted', loaded({}, { integration: null })],
    ['it does not decode', loaded({}, { summary: null })],
    ['a test message on a live integration', loaded({}, { integration: integrationOf({ mode: 'live' }) })],
    ['its payer was not matched with the load', loaded({}, { payerMatch: undefined })],
    ['the load matched another payer', loaded({ custom: 'other' }, { payerMatch: { ...loaded().payerMatch! } })],
    ['a refund (its payment may belong to a profile)', loaded({ parent_txn_id: 'P1', payment_status: 'Refunded' })],
    [
      'held: the receiver is not ours',
      loaded({ receiver_email: 'someone@example.com', receiver_id: 'X1', business: 'someone@example.com' }),
    ],
    ['pending: nothing to post', loaded({ payment_status: 'Pending', pending_reason: 'echeck' })],
  ])('left to the workflow: %s', (_why, msg) => {
    expect(plan(msg)).toBeUndefined();
  });

  test('left to the workflow: a message its payment already took, or one routed to another payment', () => {
    const taken = plan(loaded())!;
    expect(plan(loaded(), taken.state)).toBeUndefined();
    expect(plan(loaded(), null, 'ANOTHER')).toBeUndefined();
  });

  test('a payment loaded from its saved state: decided from it, as the workflow does', () => {
    const saved = { ...initialPaymentState('shop', TXN), attention: [] };
    expect(plan(loaded(), saved)?.state).toMatchObject({ phase: 'credited', creditedMinor: 1234 });
  });
});
