import { balanceMinor, createTestStack, deliverIpn, sample, withFields, type TestStack } from '../support/stack';

/**
 * Every PayPal sample through the real stack (HTTP delivery, postback to the simulator, Temporal,
 * ledger), with the outcome PayPal's rules give it. Each sample comes from a different merchant
 * account, so each account is its own integration configured with that sample's receiver.
 */
let stack: TestStack;

const INTEGRATIONS: Record<string, Record<string, unknown>> = {
  leetsoft: { allowedCurrencies: ['CAD'], receiverIds: ['UQ8PDYXJZQD9Y'] },
  'leetsoft-net': { allowedCurrencies: ['CAD'], receiverIds: ['UQ8PDYXJZQD9Y'], feePolicy: 'net' },
  'sandbox-seller': { allowedCurrencies: ['USD'], receiverEmails: ['seller@paypalsandbox.com'] },
  cff: {
    allowedCurrencies: ['USD'],
    receiverEmails: ['aramaswamis-facilitator@gmail.com'],
    receiverIds: ['T4A6C58SP7PP2'],
  },
  romanescoins: { allowedCurrencies: ['EUR'], receiverIds: ['UCWM6R2TARF36'] },
  gpmac: {
    allowedCurrencies: ['USD'],
    receiverEmails: ['gpmac_1231902686_biz@paypal.com'],
    receiverIds: ['S8XGHLYDW9T3S'],
  },
  ccvpn: { allowedCurrencies: ['EUR'], receiverEmails: ['test_business@example.com'] },
  research: {
    allowedCurrencies: ['USD'],
    receiverEmails: ['resear_1362421868_biz@gmail.com'],
    receiverIds: ['7WZ88H535BSYJ'],
  },
  colectivo: { allowedCurrencies: ['USD'], receiverEmails: ['info@colectivopyme.com'] },
  payouts: {
    allowedCurrencies: ['USD', 'GBP'],
    receiverEmails: ['massuk_1351170591_biz@example.com', 'robert@hisowncompany.com', 'paypal-gr-sandbox@gumroad.com'],
  },
  angelleye: { allowedCurrencies: ['USD'], receiverEmails: ['sandbo_1215254764_biz@angelleye.com'] },
  woo: { allowedCurrencies: ['AUD'], receiverEmails: ['shop@woo.example.com'] },
  'paypal-japan': { allowedCurrencies: ['USD'], receiverEmails: ['hogehoge+b@gmail.com'] },
  // These two samples carry no test_ipn: live messages PayPal's live host would have to verify,
  // which a test cannot reach. A sandbox integration without postback takes them instead.
  caelum: { allowedCurrencies: ['BRL'], receiverEmails: ['billing@caelum.com.br'], verifyTransaction: false },
};

const CUSTOMERS: Record<string, string[]> = {
  'c-tobi': ['tobi@snowdevil.ca'],
  'c-sandbox-buyer': ['buyer@paypalsandbox.com'],
  'c-ashwin': ['aramaswamis@gmail.com'],
  'c-jorg': ['email@gmail.com'],
  'c-gpmac': ['gpmac_1231902590_per@paypal.com'],
  'c-test-user': ['test_user@example.com'],
  'c-bishan': ['bishan_1233269544_per@gmail.com'],
  'c-david': ['selenium-1429601863@example.com'],
  'c-ariel': ['buyer@colectivopyme.com'],
};

beforeAll(async () => {
  stack = await createTestStack('samples');
  for (const [id, config] of Object.entries(INTEGRATIONS)) {
    const res = await stack.admin('PUT', `/admin/integrations/${id}`, { name: id, mode: 'sandbox', ...config });
    expect(res).toMatchObject({ status: 200 });
  }
  for (const [id, paypalEmails] of Object.entries(CUSTOMERS)) {
    expect(await stack.admin('PUT', `/admin/customers/${id}`, { name: id, paypalEmails })).toMatchObject({
      status: 200,
    });
  }
});
afterAll(() => stack?.close());

async function expectLedgerSound(): Promise<void> {
  const check = await stack.admin('GET', '/admin/ledger/check');
  expect(check).toMatchObject({ status: 200, body: { ok: true, problems: [] } });
}

const entriesOf = (integrationId: string, txnId: string) =>
  stack.db.models.LedgerEntry.find({ integrationId, txnId }).sort({ seq: 1 }).lean();

describe('payments received: Completed is credited, exactly, in its currency', () => {
  test.each([
    // sample, integration, customer, currency, credited minor units
    ['web_accept_completed_01', 'leetsoft', 'c-tobi', 'CAD', 50000], // gross 500.00
    ['web_accept_completed_01', 'leetsoft-net', 'c-tobi', 'CAD', 48495], // net: 500.00 - 15.05
    ['web_accept_completed_ipn_simulator_01', 'sandbox-seller', 'c-sandbox-buyer', 'USD', 1234],
    ['cart_completed_01', 'cff', 'c-ashwin', 'USD', 50],
    ['cart_completed_eur_windows1252_01', 'romanescoins', 'c-jorg', 'EUR', 300],
    ['cart_completed_ipn_simulator_01', 'sandbox-seller', 'c-sandbox-buyer', 'USD', 1234],
    ['express_checkout_completed_01', 'gpmac', 'c-gpmac', 'USD', 1995],
    // Same txn_id as express_checkout_completed_01: another merchant account, so another integration.
    ['express_checkout_completed_eur_02', 'ccvpn', 'c-test-user', 'EUR', 300],
    ['express_checkout_completed_windows1252_01', 'sandbox-seller', 'c-bishan', 'USD', 1000],
  ] as const)('%s on %s credits %s %s %i', async (name, integrationId, customerId, currency, minor) => {
    const raw = sample(name);
    const before = await balanceMinor(stack, customerId, currency);
    const msg = await deliverIpn(stack, integrationId, raw);
    expect(msg.state).toBe('applied:credited');
    expect(msg.flags).toEqual([]);

    const entries = await entriesOf(integrationId, msg.txnId!);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      customerId,
      currency,
      amountMinor: minor,
      reason: 'payment',
      messageId: String(msg._id),
    });
    expect(await balanceMinor(stack, customerId, currency)).toBe(before + minor);
    const payment = await stack.db.models.Payment.findById(`${integrationId}:${msg.txnId}`).lean();
    expect(payment).toMatchObject({
      state: 'credited',
      paymentStatus: 'Completed',
      customerId,
      currency,
      creditedMinor: minor,
      needsOperator: false,
    });
    await expectLedgerSound();
  });

  // A profile's cycle payment is credited by the profile's workflow (it owns its payments and their refunds).
  test.each([
    ['recurring_payment_completed_01', 'research', 'I-3RXGL2YU6H4T', 'c-david', 'USD', 2995],
    ['subscr_payment_completed_eur_01', 'ccvpn', 'I-1S262863X133', 'c-test-user', 'EUR', 900],
  ] as const)(
    '%s on %s: profile %s credits %s %s %i',
    async (name, integrationId, profileId, customerId, currency, minor) => {
      const before = await balanceMinor(stack, customerId, currency);
      const msg = await deliverIpn(stack, integrationId, sample(name));
      expect(msg.state).toBe('applied:Active');
      expect(msg.flags).toEqual([]);
      const entries = await entriesOf(integrationId, msg.txnId!);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        customerId,
        currency,
        amountMinor: minor,
        reason: 'payment',
        messageId: String(msg._id),
      });
      expect(await balanceMinor(stack, customerId, currency)).toBe(before + minor);
      const profile = await stack.db.models.RecurringProfile.findById(`${integrationId}:${profileId}`).lean();
      expect(profile).toMatchObject({
        status: 'Active',
        customerId,
        needsOperator: false,
        snapshot: { creditedMinor: minor, currency },
      });
      await expectLedgerSound();
    },
  );

  test('the postback carried the exact bytes received, non-ASCII windows-1252 included', async () => {
    const raw = sample('cart_completed_eur_windows1252_01'); // first_name=J%F6rg
    const postbacks = stack.sim.postbacks.filter((p) => p.body.subarray('cmd=_notify-validate&'.length).equals(raw));
    expect(postbacks.length).toBeGreaterThanOrEqual(1);
    expect(
      postbacks.every((p) => p.answer === 'VERIFIED' && p.body.toString('latin1').startsWith('cmd=_notify-validate&')),
    ).toBe(true);
  });

  test('every balance is exact per currency, and no one else got money', async () => {
    const expected: Record<string, Array<{ currency: string; balanceMinor: number }>> = {
      'c-tobi': [{ currency: 'CAD', balanceMinor: 98495 }],
      'c-sandbox-buyer': [{ currency: 'USD', balanceMinor: 2468 }],
      'c-ashwin': [{ currency: 'USD', balanceMinor: 50 }],
      'c-jorg': [{ currency: 'EUR', balanceMinor: 300 }],
      'c-gpmac': [{ currency: 'USD', balanceMinor: 1995 }],
      'c-test-user': [{ currency: 'EUR', balanceMinor: 1200 }],
      'c-bishan': [{ currency: 'USD', balanceMinor: 1000 }],
      'c-david': [{ currency: 'USD', balanceMinor: 2995 }],
      'c-ariel': [],
    };
    for (const [customerId, balances] of Object.entries(expected)) {
      const res = await stack.admin('GET', `/admin/customers/${customerId}`);
      expect(res.body.balances).toEqual([]); // every sample is a test message (test_ipn=1): no live money
      expect({
        customerId,
        balances: res.body.sandboxBalances.map((b: { currency: string; balanceMinor: number }) => ({
          currency: b.currency,
          balanceMinor: b.balanceMinor,
        })),
      }).toEqual({ customerId, balances });
    }
    expect((await stack.admin('GET', '/admin/customers/c-tobi')).body.sandboxBalances).toEqual([
      { currency: 'CAD', balanceMinor: 98495, balance: '984.95' },
    ]);
    await expectLedgerSound();
  });
});

describe('payments that must not (yet) move money', () => {
  test('web_accept_pending_unilateral is recorded without money; its Completed is then credited once', async () => {
    const pending = sample('web_accept_pending_unilateral_windows1252_01');
    const msg = await deliverIpn(stack, 'colectivo', pending);
    expect(msg.state).toBe('applied:pending');
    expect(await entriesOf('colectivo', '9JH877021V814904L')).toHaveLength(0);
    expect(await stack.db.models.Payment.findById('colectivo:9JH877021V814904L').lean()).toMatchObject({
      state: 'pending',
      paymentStatus: 'Pending',
      creditedMinor: 0,
    });
    expect(await balanceMinor(stack, 'c-ariel', 'USD')).toBe(0);

    const completed = withFields(pending, { payment_status: 'Completed', pending_reason: '' });
    expect((await deliverIpn(stack, 'colectivo', completed)).state).toBe('applied:credited');
    // PayPal resending the Completed changes nothing.
    expect((await deliverIpn(stack, 'colectivo', withFields(completed, { resend: 'true' }))).state).toBe('duplicate');

    const entries = await entriesOf('colectivo', '9JH877021V814904L');
    expect(entries.map((e) => e.amountMinor)).toEqual([2000]);
    expect(await balanceMinor(stack, 'c-ariel', 'USD')).toBe(2000);
    await expectLedgerSound();
  });

  test('web_accept_declined moves no money', async () => {
    const before = await balanceMinor(stack, 'c-sandbox-buyer', 'USD');
    const msg = await deliverIpn(stack, 'sandbox-seller', sample('web_accept_declined_ipn_simulator_01'));
    expect(msg.state).toBe('applied:not_paid');
    expect(await stack.db.models.Payment.findById('sandbox-seller:153826001').lean()).toMatchObject({
      state: 'not_paid',
      paymentStatus: 'Declined',
      creditedMinor: 0,
      needsOperator: false,
    });
    expect(await entriesOf('sandbox-seller', '153826001')).toHaveLength(0);
    expect(await balanceMinor(stack, 'c-sandbox-buyer', 'USD')).toBe(before);
    await expectLedgerSound();
  });

  test.each(['masspay_completed_01', 'masspay_processed_01', 'masspay_processed_02'])(
    '%s is money we sent: never credited',
    async (name) => {
      const msg = await deliverIpn(stack, 'payouts', sample(name));
      expect(msg.state).toBe('masspay_unmatched'); // no batch of ours has these items: held for a person
      expect(await stack.db.models.LedgerEntry.countDocuments({ integrationId: 'payouts' })).toBe(0);
      expect(await stack.db.models.Payment.countDocuments({ integrationId: 'payouts' })).toBe(0);
      await expectLedgerSound();
    },
  );

  // Profile lifecycle messages go to their profile (state `applied:<profile status>`); the rest are only recorded.
  test.each([
    ['subscr_signup_01', 'ccvpn', 'windows-1252', 'applied:Active'],
    // Its receiver is a placeholder ({email}): another account's profile, not applied (status stays unknown).
    ['subscr_signup_aud_trial_02', 'woo', 'windows-1252', 'applied:unknown'],
    ['subscr_cancel_01', 'ccvpn', 'windows-1252', 'applied:Cancelled'],
    ['recurring_payment_profile_created_01', 'research', 'windows-1252', 'applied:Active'],
    ['recurring_payment_profile_created_02', 'angelleye', 'windows-1252', 'applied:Active'],
    // Live messages (no test_ipn) on a sandbox integration: flagged, not applied.
    ['recurring_payment_profile_created_initial_failed_01', 'caelum', 'utf-8', 'applied:unknown'],
    ['recurring_payment_profile_cancel_brl_01', 'caelum', 'utf-8', 'applied:unknown'],
    ['recurring_payment_suspended_max_failed_01', 'angelleye', 'windows-1252', 'applied:Suspended'],
    ['recurring_payment_failed_utf8_01', 'paypal-japan', 'utf-8', 'applied:Active'],
    ['mp_notification_billing_agreement_shift_jis_01', 'paypal-japan', 'shift_jis', 'recorded_no_money'],
  ] as const)('%s decodes (%s) and moves no money (%s)', async (name, integrationId, charset, state) => {
    const raw = sample(name);
    const ledgerBefore = await stack.db.models.LedgerEntry.countDocuments({ integrationId });
    const paymentsBefore = await stack.db.models.Payment.countDocuments({ integrationId });
    const msg = await deliverIpn(stack, integrationId, raw);
    expect(msg).toMatchObject({ state, charset });
    expect(msg.decodeError).toBeUndefined();
    expect(typeof msg.txnType).toBe('string');
    expect(Buffer.from(msg.raw.buffer).equals(raw)).toBe(true);
    if (integrationId === 'caelum') expect(msg.flags).toContain('unverified');
    expect(await stack.db.models.LedgerEntry.countDocuments({ integrationId })).toBe(ledgerBefore);
    expect(await stack.db.models.Payment.countDocuments({ integrationId })).toBe(paymentsBefore);
    await expectLedgerSound();
  });
});

describe('reversals and their cancellation', () => {
  test('reversal_chargeback after its original payment debits 12.34', async () => {
    const before = await balanceMinor(stack, 'c-sandbox-buyer', 'USD');
    // The original the sample reverses: same payer and currency, txn SOMEPRIORTXNID002.
    const original = withFields(sample('web_accept_completed_ipn_simulator_01'), { txn_id: 'SOMEPRIORTXNID002' });
    expect((await deliverIpn(stack, 'sandbox-seller', original)).state).toBe('applied:credited');
    expect(await balanceMinor(stack, 'c-sandbox-buyer', 'USD')).toBe(before + 1234);

    const reversal = await deliverIpn(stack, 'sandbox-seller', sample('reversal_chargeback_ipn_simulator_01'));
    expect(reversal.state).toBe('applied:credited');
    const debit = await entriesOf('sandbox-seller', '995288809');
    expect(debit).toHaveLength(1);
    expect(debit[0]).toMatchObject({
      amountMinor: -1234,
      reason: 'reversal',
      parentTxnId: 'SOMEPRIORTXNID002',
      customerId: 'c-sandbox-buyer',
      currency: 'USD',
    });
    expect(await balanceMinor(stack, 'c-sandbox-buyer', 'USD')).toBe(before);
    expect(await stack.db.models.Payment.findById('sandbox-seller:SOMEPRIORTXNID002').lean()).toMatchObject({
      creditedMinor: 1234,
      debitedMinor: 1234,
      needsOperator: false,
    });
    await expectLedgerSound();
  });

  test('canceled_reversal after its original and the reversal brings the money back', async () => {
    const before = await balanceMinor(stack, 'c-sandbox-buyer', 'USD');
    const original = withFields(sample('web_accept_completed_ipn_simulator_01'), { txn_id: 'SOMEPRIORTXNID003' });
    expect((await deliverIpn(stack, 'sandbox-seller', original)).state).toBe('applied:credited');
    const reversal = withFields(sample('reversal_chargeback_ipn_simulator_01'), {
      txn_id: '995288810',
      parent_txn_id: 'SOMEPRIORTXNID003',
    });
    expect((await deliverIpn(stack, 'sandbox-seller', reversal)).state).toBe('applied:credited');
    expect(await balanceMinor(stack, 'c-sandbox-buyer', 'USD')).toBe(before);

    expect((await deliverIpn(stack, 'sandbox-seller', sample('canceled_reversal_ipn_simulator_01'))).state).toBe(
      'applied:credited',
    );
    const back = await entriesOf('sandbox-seller', '694541630');
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ amountMinor: 1234, reason: 'canceled_reversal', parentTxnId: 'SOMEPRIORTXNID003' });
    expect(await balanceMinor(stack, 'c-sandbox-buyer', 'USD')).toBe(before + 1234);
    expect(await stack.db.models.Payment.findById('sandbox-seller:SOMEPRIORTXNID003').lean()).toMatchObject({
      creditedMinor: 1234,
      debitedMinor: 0,
    });
    await expectLedgerSound();
  });
});
