import { creditKeyOf, decideTopup, nextWakeMs, type TopupInput } from '../../src/topups/rules';
import type { CaptureView, PayPalView, TopupState } from '../../src/topups/state';

const NOW = '2026-12-06T08:00:00.000Z';
const base: TopupState = {
  id: 'tu_aaaaaaaaaaaaaaaaaaaa',
  integrationId: 'shop',
  customerId: 'c1',
  api: 'orders',
  mode: 'sandbox',
  currency: 'USD',
  amountMinor: 2_500,
  feePolicy: 'gross',
  phase: 'created',
  reason: null,
  paypalRef: 'ORDER1',
  capture: null,
  creditEntryId: null,
  creditedMinor: 0,
  expiresAt: '2026-12-06T09:00:00.000Z',
  history: [],
};
const capture = (over: Partial<CaptureView> = {}): CaptureView => ({
  id: 'CAP1',
  status: 'COMPLETED',
  currency: 'USD',
  grossMinor: 2_500,
  feeMinor: 137,
  payeeOk: true,
  ...over,
});
const paypal = (view: PayPalView, via: 'capture' | 'read' = 'capture'): TopupInput => ({ type: 'paypal', via, view });
const at = (phase: TopupState['phase'], over: Partial<TopupState> = {}): TopupState => ({ ...base, phase, ...over });

describe('decideTopup', () => {
  const cases: Array<[string, TopupState, TopupInput, Partial<TopupState>, string[]]> = [
    ['the buyer returns: capture once', at('created'), { type: 'returned' }, { phase: 'capturing' }, ['capture']],
    ['a second return while capturing: nothing', at('capturing'), { type: 'returned' }, { phase: 'capturing' }, []],
    ['a return after credit: nothing', at('credited'), { type: 'returned' }, { phase: 'credited' }, []],
    [
      'cancel before approval',
      at('created'),
      { type: 'cancelled' },
      { phase: 'cancelled', reason: 'buyer_cancelled' },
      [],
    ],
    ['cancel after the capture: ignored', at('pending'), { type: 'cancelled' }, { phase: 'pending' }, []],
    [
      'COMPLETED: credit under the capture key',
      at('capturing'),
      paypal({ order: 'COMPLETED', capture: capture() }),
      { phase: 'completed' },
      ['credit'],
    ],
    [
      'PENDING: wait, no credit',
      at('capturing'),
      paypal({ order: 'COMPLETED', capture: capture({ status: 'PENDING' }) }),
      { phase: 'pending' },
      [],
    ],
    [
      'DECLINED: failed',
      at('capturing'),
      paypal({ order: 'COMPLETED', capture: capture({ status: 'DECLINED' }) }),
      { phase: 'failed', reason: 'capture_declined' },
      [],
    ],
    [
      'another amount than asked: held for a person',
      at('capturing'),
      paypal({ order: 'COMPLETED', capture: capture({ grossMinor: 2_400 }) }),
      { phase: 'held', reason: 'amount_mismatch' },
      ['alert'],
    ],
    [
      'another payee: held',
      at('capturing'),
      paypal({ order: 'COMPLETED', capture: capture({ payeeOk: false }) }),
      { phase: 'held', reason: 'payee_mismatch' },
      ['alert'],
    ],
    [
      'not approved at PayPal: back to waiting',
      at('capturing'),
      paypal({ order: 'CREATED', capture: null }),
      { phase: 'created' },
      [],
    ],
    [
      'approved seen by a poll: capture',
      at('created'),
      paypal({ order: 'APPROVED', capture: null }, 'read'),
      { phase: 'capturing' },
      ['capture'],
    ],
    [
      'still not approved after the window: expired',
      at('created', { expiresAt: '2026-12-06T07:59:00.000Z' }),
      paypal({ order: 'CREATED', capture: null }, 'read'),
      { phase: 'expired', reason: 'not_approved_in_time' },
      [],
    ],
    [
      'approved just before the window closed: captured all the same',
      at('created', { expiresAt: '2026-12-06T07:59:00.000Z' }),
      paypal({ order: 'APPROVED', capture: null }, 'read'),
      { phase: 'capturing' },
      ['capture'],
    ],
    ['a notice: PayPal is read', at('pending'), { type: 'notice', source: 'webhook' }, { phase: 'pending' }, ['read']],
    ['a notice after credit: nothing', at('credited'), { type: 'notice', source: 'ipn' }, { phase: 'credited' }, []],
    ['a tick while pending: poll', at('pending'), { type: 'tick' }, { phase: 'pending' }, ['read']],
    [
      'the ledger refuses: held',
      at('completed', { capture: capture() }),
      { type: 'refused', detail: 'live money from a sandbox integration' },
      { phase: 'held', reason: 'ledger_refused' },
      ['alert'],
    ],
    [
      'a malformed signal: recorded, nothing moves',
      at('created'),
      { type: 'malformed', signal: 'paypalNotice', issues: 'source: invalid' },
      { phase: 'created' },
      ['alert'],
    ],
  ];
  it.each(cases)('%s', (_name, state, input, expected, effects) => {
    const d = decideTopup(state, input, NOW);
    expect(d.state).toMatchObject(expected);
    expect(d.effects.map((e) => e.type)).toEqual(effects);
  });

  it('credits the capture once, with the payment entity’s key; net policy credits gross minus fee', () => {
    const d = decideTopup(at('capturing'), paypal({ order: 'COMPLETED', capture: capture() }), NOW);
    expect(d.effects).toEqual([
      {
        type: 'credit',
        posting: expect.objectContaining({
          idempotencyKey: creditKeyOf('shop', 'CAP1'),
          amountMinor: 2_500,
          customerId: 'c1',
          mode: 'sandbox',
        }),
      },
    ]);
    expect(creditKeyOf('shop', 'CAP1')).toBe('credit:shop:CAP1');
    const net = decideTopup(
      at('capturing', { feePolicy: 'net' }),
      paypal({ order: 'COMPLETED', capture: capture() }),
      NOW,
    );
    expect(net.effects[0]).toMatchObject({ posting: { amountMinor: 2_500 - 137 } });
    const posted = decideTopup(net.state, { type: 'posted', entryId: 'c1:USD:sandbox:1' }, NOW);
    expect(posted.state).toMatchObject({ phase: 'credited', creditedMinor: 2_363, creditEntryId: 'c1:USD:sandbox:1' });
    // A late COMPLETED (the webhook after the return) changes nothing and posts nothing.
    const late = decideTopup(posted.state, paypal({ order: 'COMPLETED', capture: capture() }, 'read'), NOW);
    expect([late.state.phase, late.effects]).toEqual(['credited', []]);
  });

  it('an answer no rule foresaw: recorded with an alert, the state otherwise as it was', () => {
    const weird = { type: 'paypal', via: 'read', view: null } as unknown as TopupInput;
    const d = decideTopup(at('pending'), weird, NOW);
    expect(d.state.phase).toBe('pending');
    expect(d.state.history.at(-1)!.what).toMatch(/^could not decide \(paypal: /);
    expect(d.effects).toEqual([expect.objectContaining({ type: 'alert', kind: 'topup_internal_error' })]);
  });

  it('never changes the state it was given', () => {
    const s = at('created');
    const copy = JSON.parse(JSON.stringify(s));
    decideTopup(s, { type: 'returned' }, NOW);
    expect(s).toEqual(copy);
  });

  it('wakes to poll while waiting, by the window at the latest; never once finished', () => {
    const now = Date.parse(NOW);
    expect(nextWakeMs(at('created'), now, 60_000)).toBe(60_000);
    expect(nextWakeMs(at('created', { expiresAt: '2026-12-06T08:00:10.000Z' }), now, 60_000)).toBe(10_000);
    expect(nextWakeMs(at('pending'), now, 60_000)).toBe(60_000);
    for (const phase of ['credited', 'cancelled', 'expired', 'failed', 'held'] as const)
      expect(nextWakeMs(at(phase), now, 60_000)).toBeNull();
  });
});
