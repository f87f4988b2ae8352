import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Posting } from '../../src/shared/ledger';
import {
  decideProfile,
  keepUsedFields,
  needsPerson,
  refusalOf,
  type NvpCall,
  type NvpOutcome,
  type ProfileEffect,
  type ProfileInput,
  type ProfileRules,
} from '../../src/profiles/rules';
import {
  formatPayPalDate,
  initialProfileState,
  parsePayPalDate,
  toProfileEvent,
  type ProfileState,
} from '../../src/profiles/state';
import { decodeIpn } from '../../src/messages/decode';

/**
 * The profile rules without Temporal: inputs run through `decideProfile`, facts answered by a small
 * in-memory world (customers, an idempotent ledger, PayPal's NVP answers).
 */
interface World {
  customers: Set<string>;
  emails: Record<string, string>;
  postings: Map<string, Posting>;
  nvp: (call: NvpCall) => NvpOutcome;
  calls: NvpCall[];
}
const newWorld = (): World => ({
  customers: new Set(['c1', 'c2']),
  emails: { 'payer@example.com': 'c1' },
  postings: new Map(),
  nvp: () => ({ ack: 'Success', fields: {} }),
  calls: [],
});

let clock = Date.parse('2026-03-01T00:00:00Z');
const CTX = { outstandingAlertCycles: 3, billSettleMs: 3600_000 };

function run(world: World, state: ProfileState, input: ProfileInput, rules?: ProfileRules) {
  const facts: Parameters<typeof decideProfile>[2] = {};
  for (let round = 0; round < 50; round++) {
    const now = new Date((clock += 1000)).toISOString();
    const d = decideProfile(state, input, facts, { now, ...CTX, ...(rules ? { rules } : {}) });
    if (d.kind === 'done') return d;
    const n = d.need;
    if (n.fact === 'proof' || n.fact === 'adjustmentProof') facts.proof = { ok: true };
    else if (n.fact === 'customerExists') facts.customerExists = world.customers.has(n.customerId);
    else if (n.fact === 'customerMatch') facts.customerMatch = (n.payerEmail && world.emails[n.payerEmail]) || null;
    else if (n.fact === 'nvp') {
      world.calls.push(n.call);
      facts.nvp = world.nvp(n.call);
    } else {
      const prior = world.postings.get(n.posting.idempotencyKey);
      const ok = !prior || prior.amountMinor === n.posting.amountMinor;
      if (ok) world.postings.set(n.posting.idempotencyKey, n.posting);
      facts.postings = {
        ...facts.postings,
        [n.posting.idempotencyKey]: ok ? { ok: true } : { ok: false, reason: 'conflict' },
      };
    }
  }
  throw new Error('no decision after 50 facts');
}

function runAll(
  world: World,
  inputs: ProfileInput[],
  state = initialProfileState('shop', 'I-P1'),
  rules?: ProfileRules,
) {
  const outcomes: string[] = [];
  const effects: ProfileEffect[] = [];
  const results: unknown[] = [];
  for (const input of inputs) {
    const d = run(world, state, input, rules);
    state = d.state;
    effects.push(...d.effects);
    if (d.outcome) outcomes.push(d.outcome.outcome);
    if (d.result) results.push(d.result);
  }
  return { state, outcomes, effects, results };
}

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'ipn');
const fixture = (name: string) => decodeIpn(readFileSync(path.join(FIXTURES, `${name}.ipn`))).fields;
let seq = 0;
const T0 = Date.parse('2026-01-10T12:00:00Z');
const day = (n: number) => new Date(T0 + n * 86400_000).toISOString();

/** An IPN about profile I-P1 from payer@example.com: fields over a fixture, received on `receivedDay`. */
function ipn(
  base: string,
  over: Record<string, string>,
  receivedDay: number,
  opts: { profileId?: string; flags?: string[] } = {},
): ProfileInput {
  const fields = {
    ...fixture(base),
    recurring_payment_id: opts.profileId ?? 'I-P1',
    payer_email: 'payer@example.com',
    ...over,
  };
  const event = toProfileEvent(fields, {
    messageId: `m${++seq}`,
    integrationId: 'shop',
    profileId: opts.profileId ?? 'I-P1',
    receivedAt: day(receivedDay),
    flags: opts.flags ?? [],
    feePolicy: 'gross',
  });
  return { type: 'ipn', event };
}
const pdt = (n: number) => formatPayPalDate(day(n));
const created = (d = 0) =>
  ipn('recurring_payment_profile_created_01', { time_created: pdt(d), next_payment_date: pdt(d + 30) }, d);
const paid = (d: number, txn: string, gross = '29.95', extra: Record<string, string> = {}) =>
  ipn(
    'recurring_payment_completed_01',
    {
      payment_date: pdt(d),
      txn_id: txn,
      mc_gross: gross,
      next_payment_date: pdt(d + 30),
      outstanding_balance: '0.00',
      ...extra,
    },
    d,
  );
const failedKind = (kind: string, d: number, outstanding: string, status = 'Active') =>
  ipn(
    'recurring_payment_failed_utf8_01',
    {
      txn_type: kind,
      amount_per_cycle: '29.95',
      amount: '29.95',
      outstanding_balance: outstanding,
      profile_status: status,
      next_payment_date: pdt(d + 5),
    },
    d,
  );
const suspended = (d: number, outstanding = '89.85') =>
  ipn(
    'recurring_payment_suspended_max_failed_01',
    { outstanding_balance: outstanding, initial_payment_amount: '0.00' },
    d,
  );
const op = { operator: 'alice', reason: 'customer asked' };
const credits = (w: World) => [...w.postings.values()].map((p) => [p.idempotencyKey, p.amountMinor, p.customerId]);

describe('dates', () => {
  test.each([
    ['03:22:09 May 23, 2015 PDT', '2015-05-23T10:22:09.000Z'],
    ['13:45:44 Nov 04, 2010 PST', '2010-11-04T21:45:44.000Z'],
    ['N/A', null],
    ['', null],
  ])('%s', (text, iso) => expect(parsePayPalDate(text)).toBe(iso));
});

describe('lifecycle', () => {
  test('created → payment → skipped → failed → suspended: exact state, one credit, alerts', () => {
    const w = newWorld();
    const r = runAll(w, [
      created(0),
      paid(30, 'TX-1'),
      failedKind('recurring_payment_skipped', 60, '29.95'),
      failedKind('recurring_payment_failed', 65, '29.95'),
      suspended(70),
    ]);
    expect(r.state).toMatchObject({
      status: 'Suspended',
      currency: 'USD',
      amountPerCycleMinor: 2995,
      outstandingMinor: 8985,
      failedPaymentCount: 2,
      nextPaymentDate: null,
      customerId: 'c1',
      creditedMinor: 2995,
    });
    expect(r.state.attention).toEqual(['suspended_max_failed_payments']);
    expect(needsPerson(r.state)).toBe(true);
    expect(r.effects.filter((e) => e.type === 'alert').map((e) => (e as { kind: string }).kind)).toEqual([
      'profile_suspended_max_failed',
    ]);
    expect(credits(w)).toEqual([['credit:shop:TX-1', 2995, 'c1']]);
    expect(r.state.fields.status).toMatchObject({ source: 'ipn' });
    expect(r.outcomes).toEqual([
      'applied:Active',
      'applied:Active',
      'applied:Active',
      'applied:Active',
      'applied:Suspended',
    ]);
  });

  test('a failed payment may leave the profile open; a later payment resets the failure count', () => {
    const w = newWorld();
    const r = runAll(w, [created(0), failedKind('recurring_payment_failed', 30, '29.95'), paid(60, 'TX-2', '59.90')]);
    expect(r.state).toMatchObject({
      status: 'Active',
      failedPaymentCount: 0,
      outstandingMinor: 0,
      creditedMinor: 5990,
    });
  });

  test('suspended then reactivated through the API, outstanding billed, cancelled', () => {
    const w = newWorld();
    let r = runAll(w, [created(0), suspended(40)]);
    r = runAll(w, [{ type: 'reactivate', action: op }], r.state);
    expect(r.state).toMatchObject({ status: 'Active', attention: [] });
    expect(r.state.fields.status).toMatchObject({ source: 'api', by: 'alice' });
    expect(w.calls.at(-1)).toEqual({
      method: 'ManageRecurringPaymentsProfileStatus',
      params: { PROFILEID: 'I-P1', ACTION: 'Reactivate', NOTE: 'customer asked' },
    });
    r = runAll(w, [{ type: 'bill', action: { ...op, amount: '50.00' } }], r.state);
    expect(r.results).toEqual([expect.objectContaining({ ok: true })]);
    expect(r.state.billQueued).toMatchObject({ amountMinor: 5000 });
    expect(w.calls.at(-1)!.params).toMatchObject({ AMT: '50.00' });
    // The outstanding payment's IPN clears the queue and credits mc_gross.
    const outstandingPaid = ipn(
      'recurring_payment_completed_01',
      {
        txn_type: 'recurring_payment_outstanding_payment',
        txn_id: 'TX-OUT',
        mc_gross: '50.00',
        payment_date: formatPayPalDate(new Date(clock + 60_000).toISOString()),
        outstanding_balance: '39.85',
      },
      100,
    );
    r = runAll(w, [outstandingPaid, { type: 'cancel', action: op }], r.state);
    expect(r.state).toMatchObject({
      status: 'Cancelled',
      billQueued: null,
      outstandingMinor: 3985,
      creditedMinor: 5000,
    });
    expect(credits(w)).toEqual([['credit:shop:TX-OUT', 5000, 'c1']]);
  });
});

describe('out of order and duplicates', () => {
  const orders: Array<[string, number[]]> = [
    ['in order', [0, 1, 2, 3]],
    ['reversed', [3, 2, 1, 0]],
    ['created last', [1, 2, 3, 0]],
    ['suspended first', [3, 0, 1, 2]],
  ];
  test.each(orders)('%s: same final state and money', (_name, order) => {
    const w = newWorld();
    const inputs = [created(0), paid(30, 'TX-1'), paid(60, 'TX-2'), suspended(95, '29.95')];
    const r = runAll(
      w,
      order.map((i) => inputs[i]!),
    );
    expect(r.state).toMatchObject({
      status: 'Suspended',
      creditedMinor: 5990,
      customerId: 'c1',
      amountPerCycleMinor: 2995,
    });
    expect(
      credits(w)
        .map((c) => c[0])
        .sort(),
    ).toEqual(['credit:shop:TX-1', 'credit:shop:TX-2']);
  });

  test('a late profile_created after payments resets nothing', () => {
    const w = newWorld();
    const r = runAll(w, [paid(30, 'TX-1', '29.95', { outstanding_balance: '10.00' }), created(0)]);
    expect(r.state).toMatchObject({
      status: 'Active',
      outstandingMinor: 1000,
      nextPaymentDate: day(60),
      creditedMinor: 2995,
    });
  });

  test('an older dated payment does not undo a suspension; cancelled is never left by an IPN', () => {
    const w = newWorld();
    const cancel = ipn(
      'recurring_payment_profile_cancel_brl_01',
      { currency_code: 'USD', amount_per_cycle: '29.95', outstanding_balance: '0.00' },
      50,
    );
    const r = runAll(w, [created(0), suspended(40), paid(30, 'TX-OLD'), cancel, paid(80, 'TX-NEW')]);
    expect(r.state.status).toBe('Cancelled');
    // Money still credits: PayPal took it.
    expect(r.state.creditedMinor).toBe(5990);
    expect(r.state.history.some((h) => /Active after Cancelled: recorded, not applied/.test(h.what))).toBe(true);
  });

  test('a resent lifecycle message and a resent payment change nothing', () => {
    const w = newWorld();
    const skip = failedKind('recurring_payment_skipped', 40, '29.95');
    const pay = paid(30, 'TX-1');
    const first = runAll(w, [created(0), pay, skip]);
    const again = runAll(
      w,
      [{ ...pay, event: { ...(pay as { event: object }).event, messageId: 'm-resend' } } as ProfileInput, skip],
      first.state,
    );
    expect(again.outcomes).toEqual(['duplicate', 'duplicate']);
    expect(again.state).toMatchObject({ failedPaymentCount: 1, creditedMinor: 2995 });
    expect(w.postings.size).toBe(1);
  });
});

describe('money', () => {
  test('JPY has no decimals: amount=1 is one yen', () => {
    const w = newWorld();
    const r = runAll(
      w,
      [
        ipn(
          'recurring_payment_profile_created_01',
          { currency_code: 'JPY', amount_per_cycle: '1500', amount: '1500', outstanding_balance: '0' },
          0,
          { profileId: 'I-JPY' },
        ),
        ipn(
          'recurring_payment_completed_01',
          {
            mc_currency: 'JPY',
            currency_code: 'JPY',
            mc_gross: '1500',
            mc_fee: '84',
            amount: '1500',
            amount_per_cycle: '1500',
            outstanding_balance: '0',
            txn_id: 'TX-JPY',
            payment_date: pdt(30),
          },
          30,
          { profileId: 'I-JPY' },
        ),
      ],
      initialProfileState('shop', 'I-JPY'),
    );
    expect(r.state).toMatchObject({
      currency: 'JPY',
      amountPerCycleMinor: 1500,
      outstandingMinor: 0,
      creditedMinor: 1500,
    });
    expect(credits(w)).toEqual([['credit:shop:TX-JPY', 1500, 'c1']]);
  });

  test('a catch-up payment credits mc_gross, not the amount per cycle', () => {
    const w = newWorld();
    const r = runAll(w, [created(0), paid(30, 'TX-CATCH', '89.85', { amount: '29.95' })]);
    expect(credits(w)).toEqual([['credit:shop:TX-CATCH', 8985, 'c1']]);
    expect(r.state.amountPerCycleMinor).toBe(2995);
  });

  test('a Pending cycle payment credits only when Completed arrives', () => {
    const w = newWorld();
    const r = runAll(w, [
      created(0),
      paid(30, 'TX-P', '29.95', { payment_status: 'Pending', pending_reason: 'echeck' }),
      paid(31, 'TX-P'),
    ]);
    expect(r.state.creditedMinor).toBe(2995);
    expect(r.state.payments.map((p) => [p.txnId, p.paymentStatus, p.creditedMinor])).toEqual([
      ['TX-P', 'Completed', 2995],
    ]);
  });

  test('an unmatched profile is held; assigning a customer credits what waited, once', () => {
    const w = newWorld();
    const stranger = (input: ProfileInput) =>
      ({ ...input, event: { ...(input as { event: object }).event, payerEmail: 'who@example.com' } }) as ProfileInput;
    let r = runAll(w, [stranger(created(0)), stranger(paid(30, 'TX-1'))]);
    expect(r.state.attention).toEqual(['no_customer_match']);
    expect(r.state.payments[0]).toMatchObject({ held: 'no_customer_match', creditedMinor: 0 });
    expect(w.postings.size).toBe(0);
    r = runAll(
      w,
      [
        { type: 'assign', action: { ...op, customerId: 'nobody' } },
        { type: 'assign', action: { ...op, customerId: 'c2' } },
      ],
      r.state,
    );
    expect(r.results).toEqual([
      expect.objectContaining({ ok: false, rule: 'no_such_customer' }),
      expect.objectContaining({ ok: true }),
    ]);
    expect(r.state).toMatchObject({ customerId: 'c2', attention: [], creditedMinor: 2995 });
    expect(credits(w)).toEqual([['credit:shop:TX-1', 2995, 'c2']]);
    expect(needsPerson(r.state)).toBe(false);
    expect(refusalOf(r.state, { type: 'assign', action: { ...op, customerId: 'c1' } }, day(40))).toMatchObject({
      rule: 'already_credited',
    });
  });

  test('outstanding above the threshold (3 cycles) asks a person once', () => {
    const w = newWorld();
    const r = runAll(w, [
      created(0),
      failedKind('recurring_payment_failed', 30, '89.85'),
      failedKind('recurring_payment_failed', 60, '119.80'),
      failedKind('recurring_payment_failed', 90, '149.75'),
    ]);
    expect(r.state.attention).toEqual(['outstanding_over_threshold']);
    expect(r.effects.filter((e) => e.type === 'alert')).toHaveLength(1);
  });

  test('a refund of a credited cycle payment debits it; more than remains asks a person', () => {
    const w = newWorld();
    let r = runAll(w, [created(0), paid(30, 'TX-1')]);
    const refund = (txnId: string, gross: number) => ({
      type: 'adjustment' as const,
      event: {
        messageId: `m${++seq}`,
        integrationId: 'shop',
        kind: 'refund' as const,
        txnId,
        paymentTxnId: 'TX-1',
        paymentStatus: 'Refunded',
        pendingReason: null,
        reasonCode: 'refund',
        txnType: null,
        currency: 'USD',
        grossMinor: gross,
        feeMinor: 0,
        creditMinor: gross,
        payerEmail: null,
        custom: null,
        caseId: null,
        flags: [],
        sandbox: true,
        receivedAt: day(31),
      },
    });
    r = runAll(w, [refund('R-1', 1000), refund('R-2', 5000)], r.state);
    expect(r.state).toMatchObject({ creditedMinor: 2995, debitedMinor: 1000 });
    expect(r.state.attention).toEqual(['refund:R-2']);
    expect(w.postings.get('refund:shop:R-1:Refunded')?.amountMinor).toBe(-1000);
  });
});

describe('operator actions: PayPal rules before calling, PayPal answers mapped', () => {
  const base = () => runAll(newWorld(), [created(0), failedKind('recurring_payment_failed', 30, '29.95')]).state;
  test.each([
    ['suspend', 'Suspended', '11557'],
    ['reactivate', 'Active', '11558'],
    ['cancel', 'Pending', '11556'],
  ] as const)('%s on a %s profile is refused with %s and PayPal is not called', (type, status, rule) => {
    const w = newWorld();
    const r = runAll(w, [{ type, action: op }], { ...base(), status });
    expect(r.results).toEqual([expect.objectContaining({ ok: false, status: 409, rule })]);
    expect(w.calls).toEqual([]);
  });

  test(
    'bill: amount over outstanding 11576, queued 11577, near ' +
      'a scheduled payment 11578, zero balance, bad amount 422',
    () => {
      const s = base();
      const now = day(31);
      expect(refusalOf(s, { type: 'bill', action: { ...op, amount: '30.00' } }, now)).toMatchObject({
        status: 409,
        rule: '11576',
      });
      expect(
        refusalOf(
          { ...s, billQueued: { amountMinor: 1, at: now, operator: 'bob' } },
          { type: 'bill', action: op },
          now,
        ),
      ).toMatchObject({ rule: '11577' });
      expect(
        refusalOf(s, { type: 'bill', action: op }, new Date(Date.parse(s.nextPaymentDate!) - 3600_000).toISOString()),
      ).toMatchObject({ rule: '11578' });
      expect(refusalOf({ ...s, outstandingMinor: 0 }, { type: 'bill', action: op }, now)).toMatchObject({
        rule: 'no_outstanding_balance',
      });
      expect(refusalOf(s, { type: 'bill', action: { ...op, amount: '0.00' } }, now)).toMatchObject({ status: 422 });
      expect(refusalOf({ ...s, status: 'Cancelled' }, { type: 'bill', action: op }, now)).toMatchObject({
        rule: 'profile_status',
      });
      expect(refusalOf(s, { type: 'bill', action: op }, now)).toBeNull();
    },
  );

  test('cancel of a cancelled profile is success without a call', () => {
    const w = newWorld();
    const r = runAll(w, [{ type: 'cancel', action: op }], { ...base(), status: 'Cancelled' });
    expect(r.results).toEqual([expect.objectContaining({ ok: true, detail: 'I-P1 is already cancelled' })]);
    expect(w.calls).toEqual([]);
  });

  test("PayPal's failure is the answer: state unchanged, audit carries it", () => {
    const w = newWorld();
    w.nvp = () => ({
      ack: 'Failure',
      code: '11557',
      shortMessage: 'Invalid profile status',
      longMessage: 'The profile must be active',
    });
    const r = runAll(w, [{ type: 'suspend', action: op }], base());
    expect(r.state.status).toBe('Active');
    expect(r.results).toEqual([expect.objectContaining({ ok: false, status: 409, rule: '11557' })]);
    expect(r.effects.find((e) => e.type === 'audit')).toMatchObject({
      actor: 'alice',
      action: 'profile_suspend',
      reason: 'customer asked',
      details: { paypal: { ack: 'Failure', code: '11557' } },
    });
  });

  test('refresh takes PayPal’s view and records the drift', () => {
    const w = newWorld();
    w.nvp = () => ({
      ack: 'Success',
      fields: {
        STATUS: 'Suspended',
        OUTSTANDINGBALANCE: '59.90',
        CURRENCYCODE: 'USD',
        AMT: '29.95',
        FAILEDPAYMENTCOUNT: '2',
        NEXTBILLINGDATE: '',
      },
    });
    const r = runAll(w, [{ type: 'refresh', action: op }], base());
    expect(r.state).toMatchObject({
      status: 'Suspended',
      outstandingMinor: 5990,
      failedPaymentCount: 2,
      nextPaymentDate: null,
    });
    expect(r.state.fields.outstanding).toMatchObject({ source: 'refresh' });
    expect(r.effects.some((e) => e.type === 'alert' && e.kind === 'profile_drift')).toBe(true);
  });
});

describe('nothing throws', () => {
  test('a malformed signal is recorded and audited', () => {
    const r = runAll(newWorld(), [{ type: 'malformed', signal: 'suspend', issues: 'operator: required' }]);
    expect(r.state.history.at(-1)!.what).toMatch(/malformed suspend/);
    expect(r.effects.map((e) => e.type)).toEqual(['audit', 'alert']);
  });
});

describe('BillOutstandingAmount once: a lost answer is uncertain until PayPal says what happened', () => {
  /** A suspended profile owing 89.85 whose bill of 50.00 got no answer. */
  const uncertain = () => {
    const w = newWorld();
    let r = runAll(w, [created(0), suspended(40)]);
    w.nvp = () => ({ ack: 'Unknown', message: 'socket hang up' });
    r = runAll(w, [{ type: 'bill', action: { ...op, amount: '50.00' } }], r.state);
    return { w, r };
  };
  const fieldsOwing = (outstanding: string) => ({
    STATUS: 'Suspended',
    CURRENCYCODE: 'USD',
    AMT: '29.95',
    OUTSTANDINGBALANCE: outstanding,
  });
  const details = (outstanding: string): NvpOutcome => ({ ack: 'Success', fields: fieldsOwing(outstanding) });

  test('held for a person, and a second bill is refused without a call', () => {
    const { w, r } = uncertain();
    expect(r.results).toEqual([expect.objectContaining({ ok: false, status: 502, rule: 'bill_uncertain' })]);
    expect(r.state.billUncertain).toMatchObject({ amountMinor: 5000, operator: 'alice', outstandingBeforeMinor: 8985 });
    expect(r.state.attention).toEqual(['suspended_max_failed_payments', 'bill_uncertain']);
    expect(needsPerson(r.state)).toBe(true);
    expect(r.effects.some((e) => e.type === 'alert' && e.kind === 'profile_bill_uncertain')).toBe(true);
    const calls = w.calls.length;
    const again = runAll(w, [{ type: 'bill', action: { ...op, amount: '10.00' } }], r.state);
    expect(again.results).toEqual([expect.objectContaining({ ok: false, status: 409, rule: 'bill_uncertain' })]);
    expect(w.calls.length).toBe(calls);
    // Nor may a person wave it through.
    const ack = runAll(w, [{ type: 'acknowledge', action: { ...op, matter: 'bill_uncertain' } }], r.state);
    expect(ack.results).toEqual([expect.objectContaining({ ok: false, rule: 'bill_uncertain' })]);
  });

  test('an unchanged balance within the settle window proves nothing; after it, not billed: a bill may go', () => {
    const { w, r } = uncertain();
    w.nvp = () => details('89.85');
    const early = runAll(w, [{ type: 'refresh', action: op }], r.state);
    expect(early.state.billUncertain).not.toBeNull();
    expect(early.state.history.at(-1)!.what).toMatch(/still uncertain/);
    clock += CTX.billSettleMs;
    const late = runAll(w, [{ type: 'refresh', action: op }], early.state);
    expect(late.state).toMatchObject({ billUncertain: null, attention: ['suspended_max_failed_payments'] });
    expect(late.effects.find((e) => e.type === 'audit' && e.action === 'profile_bill_reconciled')).toMatchObject({
      details: { verdict: 'not_carried_out', outstandingBeforeMinor: 8985, outstandingAfterMinor: 8985 },
    });
    w.nvp = () => ({ ack: 'Success', fields: {} });
    const rebill = runAll(w, [{ type: 'bill', action: { ...op, amount: '50.00' } }], late.state);
    expect(rebill.results).toEqual([expect.objectContaining({ ok: true })]);
  });

  test.each([
    ['a lower balance on refresh', 'balance'],
    ["the outstanding payment's IPN", 'ipn'],
  ])('%s says it was carried out: no bill of the same money again', (_name, by) => {
    const { w, r } = uncertain();
    let state = r.state;
    if (by === 'balance') {
      w.nvp = () => details('39.85');
      state = runAll(w, [{ type: 'refresh', action: op }], state).state;
    } else {
      const outstandingPaid = ipn(
        'recurring_payment_completed_01',
        {
          txn_type: 'recurring_payment_outstanding_payment',
          txn_id: 'TX-OUT',
          mc_gross: '50.00',
          payment_date: formatPayPalDate(new Date(clock + 60_000).toISOString()),
          outstanding_balance: '39.85',
        },
        100,
      );
      state = runAll(w, [outstandingPaid], state).state;
      expect(credits(w)).toContainEqual(['credit:shop:TX-OUT', 5000, 'c1']);
    }
    expect(state).toMatchObject({ billUncertain: null, outstandingMinor: 3985 });
    expect(state.attention).not.toContain('bill_uncertain');
    const calls = w.calls.length;
    const rebill = runAll(w, [{ type: 'bill', action: { ...op, amount: '50.00' } }], state);
    expect(rebill.results).toEqual([expect.objectContaining({ ok: false, rule: '11576' })]);
    expect(w.calls.length).toBe(calls);
  });

  test('what audit keeps of a refresh: the call and the verdict, none of the subscriber', () => {
    const w = newWorld();
    w.nvp = () => ({
      ack: 'Success',
      fields: {
        ...fieldsOwing('0.00'),
        SUBSCRIBERNAME: 'Ann Payer',
        SHIPTOSTREET: '1 Main St',
        CORRELATIONID: 'c1',
      },
    });
    const r = runAll(w, [created(0), { type: 'refresh', action: op }]);
    const audit = r.effects.find((e) => e.type === 'audit' && e.action === 'profile_refresh')!;
    expect(audit).toMatchObject({ details: { paypal: { ack: 'Success', correlationId: 'c1' } } });
    expect(JSON.stringify(audit)).not.toMatch(/Ann Payer|Main St/);
    expect(keepUsedFields(w.nvp({ method: 'GetRecurringPaymentsProfileDetails', params: {} }))).toEqual({
      ack: 'Success',
      fields: { ...fieldsOwing('0.00'), CORRELATIONID: 'c1' },
    });
  });
});

describe('acknowledge closes notices; a contradiction needs its own decision', () => {
  test('a blanket acknowledge leaves contradictions open; naming one closes it', () => {
    const w = newWorld();
    // Cancelled, then a payment PayPal dates after the cancellation.
    const cancel = ipn(
      'recurring_payment_profile_created_01',
      { txn_type: 'recurring_payment_profile_cancel', profile_status: 'Cancelled' },
      20,
    );
    const late = paid(25, 'TX-LATE', '29.95', { profile_status: '' });
    let r = runAll(w, [created(0), failedKind('recurring_payment_failed', 10, '119.80'), cancel, late]);
    expect(r.state.status).toBe('Cancelled');
    expect(credits(w)).toEqual([['credit:shop:TX-LATE', 2995, 'c1']]);
    expect(r.state.attention).toEqual(['outstanding_over_threshold', 'payment_after_final:TX-LATE']);
    expect(r.effects.some((e) => e.type === 'alert' && e.kind === 'profile_contradiction')).toBe(true);

    r = runAll(w, [{ type: 'acknowledge', action: op }], r.state);
    expect(r.state.attention).toEqual(['payment_after_final:TX-LATE']);
    const again = runAll(w, [{ type: 'acknowledge', action: op }], r.state);
    expect(again.results).toEqual([expect.objectContaining({ ok: false, rule: 'matter_needs_own_decision' })]);
    const wrong = runAll(w, [{ type: 'acknowledge', action: { ...op, matter: 'payment_after_final:TX-X' } }], r.state);
    expect(wrong.results).toEqual([expect.objectContaining({ ok: false, rule: 'no_such_matter' })]);
    r = runAll(w, [{ type: 'acknowledge', action: { ...op, matter: 'payment_after_final:TX-LATE' } }], r.state);
    expect(r.state.attention).toEqual([]);
    expect(r.effects.find((e) => e.type === 'audit')).toMatchObject({
      action: 'profile_acknowledge',
      details: { closed: ['payment_after_final:TX-LATE'], open: [] },
    });
  });

  test('a live status dated after PayPal’s own cancellation is a contradiction; older news is not', () => {
    const w = newWorld();
    const cancel = ipn(
      'recurring_payment_profile_created_01',
      { txn_type: 'recurring_payment_profile_cancel', profile_status: 'Cancelled' },
      20,
    );
    const r = runAll(w, [created(0), cancel, created(5), paid(30, 'TX-30', '29.95', { profile_status: 'Active' })]);
    expect(r.state.status).toBe('Cancelled');
    expect(r.state.attention.map((m) => m.split(':')[0])).toEqual(['final_status_contradicted', 'payment_after_final']);
  });

  test('rules a running workflow had before its patch: a blanket acknowledge closes all but no customer', () => {
    const w = newWorld();
    const legacy = { billOnce: false, namedMatters: false };
    const state = { ...runAll(w, [created(0)]).state, attention: ['foreign_event:m9', 'outstanding_over_threshold'] };
    const r = runAll(w, [{ type: 'acknowledge', action: op }], state, legacy);
    expect(r.state.attention).toEqual([]);
    expect(r.results).toEqual([{ ok: true, detail: 'acknowledged' }]);
  });
});
