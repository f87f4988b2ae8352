import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  IpnSummary,
  IpnSummarySchema,
  PAYMENT_TXN_TYPES,
  isPaymentTxnType,
  summarizeIpn,
} from '../../src/messages/summary';
import { parseAmount } from '../../src/shared/money';
import { decodeIpn } from '../../src/messages/decode';
import { SAMPLES_DIR, sampleFiles } from '../support/samples';

function summarizeSample(name: string): IpnSummary {
  return summarizeIpn(decodeIpn(readFileSync(path.join(SAMPLES_DIR, name))).fields);
}

/** file -> [txn_type, payment_status, test_ipn, masspay item count] as INDEX.md describes them. */
function readIndex(): Map<string, [string, string, string, number]> {
  const rows = new Map<string, [string, string, string, number]>();
  for (const line of readFileSync(path.join(SAMPLES_DIR, 'INDEX.md'), 'utf8').split('\n')) {
    const [, file, txnType, status, , testIpn, items] = line.split('|').map((cell) => cell.trim());
    if (file === undefined || !file.endsWith('.ipn')) continue;
    rows.set(file, [txnType ?? '', status ?? '', testIpn ?? '', items ? Number(items) : 0]);
  }
  return rows;
}

const EMPTY_ITEM = {
  masspayTxnId: null,
  gross: null,
  fee: null,
  currency: null,
  receiverEmail: null,
  status: null,
  uniqueId: null,
  reasonCode: null,
};

describe('summarizeIpn on every sample', () => {
  const index = readIndex();

  it('covers every sample listed in INDEX.md', () => {
    expect([...index.keys()].sort()).toEqual(sampleFiles);
  });

  it.each(sampleFiles)('%s matches INDEX.md and the schema', (name) => {
    const summary = summarizeSample(name);
    const [txnType, status, testIpn, itemCount] = index.get(name) ?? ['?', '?', '?', -1];
    expect(IpnSummarySchema.parse(summary)).toEqual(summary);
    expect(summary.txnType).toBe(txnType);
    expect(summary.paymentStatus).toBe(status === '' ? null : status);
    expect(summary.testIpn).toBe(testIpn === '1');
    expect(summary.resend).toBe(false);
    expect(summary.masspayItems).toHaveLength(itemCount);

    // Amounts stay raw here but must be exact-convertible where they exist.
    if (summary.gross !== null) {
      expect(summary.currency).not.toBeNull();
      expect(Number.isSafeInteger(parseAmount(summary.gross, summary.currency ?? ''))).toBe(true);
    }
    for (const item of summary.masspayItems) {
      expect(Number.isSafeInteger(parseAmount(item.gross ?? '', item.currency ?? ''))).toBe(true);
    }
  });
});

describe('payments', () => {
  it('web_accept_completed_01: raw amounts, lowercased emails, raw date', () => {
    expect(summarizeSample('web_accept_completed_01.ipn')).toEqual({
      txnType: 'web_accept',
      txnId: '6G996328CK404320L',
      parentTxnId: null,
      paymentStatus: 'Completed',
      pendingReason: null,
      reasonCode: null,
      receiverEmail: 'tobi@leetsoft.com',
      receiverId: 'UQ8PDYXJZQD9Y',
      business: 'tobi@leetsoft.com',
      payerEmail: 'tobi@snowdevil.ca',
      payerId: 'EVMXCLDZJV77Q',
      custom: null,
      invoice: null,
      currency: 'CAD',
      gross: '500.00',
      fee: '15.05',
      testIpn: true,
      resend: false,
      ipnTrackId: null,
      recurringPaymentId: null,
      subscrId: null,
      caseId: null,
      caseType: null,
      profileStatus: null,
      paymentDate: '15:23:54 Apr 15, 2005 PDT',
      masspayItems: [],
    });
  });

  it('pending payment carries pendingReason', () => {
    const summary = summarizeSample('web_accept_pending_unilateral_windows1252_01.ipn');
    expect(summary).toMatchObject({
      paymentStatus: 'Pending',
      pendingReason: 'unilateral',
      gross: '20.00',
      currency: 'USD',
    });
  });

  it('keeps custom as our reference, decoded', () => {
    expect(summarizeSample('express_checkout_completed_windows1252_01.ipn').custom).toBe('website_id=13&user_id=21');
    expect(summarizeSample('cart_completed_01.ipn').custom).toBe('{responseId}');
  });

  it('IPN Simulator: receiver_id holds an email and is kept as-is', () => {
    const summary = summarizeSample('web_accept_completed_ipn_simulator_01.ipn');
    expect(summary.receiverId).toBe('seller@paypalsandbox.com');
    expect(summary.paymentDate).toBe('23:04:06 Feb 02, 2009 PDT');
    expect(summary.invoice).toBe('abc1234');
  });

  it('does not read cart item amounts (mc_gross_1, mc_gross1) as Mass Pay items', () => {
    const withUnderscore = summarizeSample('cart_completed_01.ipn');
    expect(withUnderscore.masspayItems).toEqual([]);
    expect(withUnderscore.gross).toBe('0.50');
    const eur = summarizeSample('cart_completed_eur_windows1252_01.ipn');
    expect(eur).toMatchObject({ masspayItems: [], gross: '3.00', fee: '0.35', currency: 'EUR' });
    expect(summarizeSample('cart_completed_ipn_simulator_01.ipn').masspayItems).toEqual([]);
  });

  it('subscription payment carries subscrId', () => {
    expect(summarizeSample('subscr_payment_completed_eur_01.ipn')).toMatchObject({
      txnType: 'subscr_payment',
      txnId: '097872679P963871Y',
      subscrId: 'I-1S262863X133',
      gross: '9.00',
      currency: 'EUR',
    });
  });
});

describe('refunds and reversals', () => {
  it('reversal carries parentTxnId and reasonCode', () => {
    expect(summarizeSample('reversal_chargeback_ipn_simulator_01.ipn')).toMatchObject({
      paymentStatus: 'Reversed',
      txnId: '995288809',
      parentTxnId: 'SOMEPRIORTXNID002',
      reasonCode: 'chargeback',
      // The simulator sends a positive amount even for a reversal.
      gross: '12.34',
    });
  });

  it('canceled reversal carries parentTxnId', () => {
    expect(summarizeSample('canceled_reversal_ipn_simulator_01.ipn')).toMatchObject({
      paymentStatus: 'Canceled_Reversal',
      parentTxnId: 'SOMEPRIORTXNID003',
      reasonCode: 'other',
      invoice: 'D7lNKK8L-urz8D3awchsUA==',
    });
  });

  it('keeps a negative refund amount raw', () => {
    const summary = summarizeIpn({
      payment_status: 'Refunded',
      txn_id: 'REFUND1',
      parent_txn_id: 'ORIG1',
      mc_gross: '-12.34',
      mc_fee: '-0.44',
      mc_currency: 'USD',
    });
    expect(summary).toMatchObject({ txnType: null, parentTxnId: 'ORIG1', gross: '-12.34', fee: '-0.44' });
    expect(parseAmount(summary.gross ?? '', 'USD')).toBe(-1234);
  });
});

describe('Mass Pay', () => {
  it('masspay_completed_01 has 3 items in order with their amounts', () => {
    const summary = summarizeSample('masspay_completed_01.ipn');
    expect(summary).toMatchObject({
      txnType: 'masspay',
      paymentStatus: 'Completed',
      txnId: null,
      gross: null,
      currency: null,
    });
    expect(summary.payerEmail).toBe('massuk_1351170591_biz@example.com');
    expect(summary.masspayItems).toEqual([
      {
        index: 1,
        masspayTxnId: '7XW35917TG8293137',
        gross: '10.00',
        fee: '0.20',
        currency: 'GBP',
        receiverEmail: 'buyer_1348066306_per@example.com',
        status: 'Completed',
        uniqueId: '123',
        reasonCode: null,
      },
      {
        index: 2,
        masspayTxnId: '79512417EL9296629',
        gross: '24.50',
        fee: '0.49',
        currency: 'GBP',
        receiverEmail: 'buyer_1351170859_per@example.com',
        status: 'Completed',
        uniqueId: '456',
        reasonCode: null,
      },
      {
        index: 3,
        masspayTxnId: '75X24749Y32677910',
        gross: '20.00',
        fee: '0.40',
        currency: 'GBP',
        receiverEmail: 'buyer_1351170993_per@example.com',
        status: 'Completed',
        uniqueId: '789',
        reasonCode: null,
      },
    ]);
  });

  it('masspay_processed_01 has 2 items, one still Unclaimed', () => {
    const summary = summarizeSample('masspay_processed_01.ipn');
    expect(summary.paymentStatus).toBe('Processed');
    expect(summary.ipnTrackId).toBeNull();
    expect(
      summary.masspayItems.map((item) => [item.index, item.gross, item.fee, item.currency, item.status, item.uniqueId]),
    ).toEqual([
      [1, '25.99', '0.52', 'USD', 'Completed', '12345'],
      [2, '9.99', '0.20', 'USD', 'Unclaimed', '45678'],
    ]);
    expect(summary.masspayItems[1]?.receiverEmail).toBe('john@fictionalcompany.com');
    expect(summary.masspayItems[1]?.masspayTxnId).toBe('8P09425963946233T');
  });

  it('masspay_processed_02 has 1 item', () => {
    const summary = summarizeSample('masspay_processed_02.ipn');
    expect(summary.masspayItems).toEqual([
      {
        index: 1,
        masspayTxnId: '8G377690596809442',
        gross: '10.00',
        fee: '0.20',
        currency: 'USD',
        receiverEmail: 'paypal-buyer@gumroad.com',
        status: 'Completed',
        uniqueId: '38',
        reasonCode: null,
      },
    ]);
    expect(summary.ipnTrackId).toBe('29339dfb40e24');
  });

  it('sorts items numerically, lowercases emails, reads reason_code_x, ignores blank and unrelated fields', () => {
    const summary = summarizeIpn({
      txn_type: 'masspay',
      payment_status: 'Processed',
      reason_code: 'message-level',
      status_10: 'Failed',
      reason_code_10: '1001',
      receiver_email_10: ' Bob@Example.COM ',
      mc_gross_10: '5.00',
      mc_gross_2: '7.00',
      status_2: 'Unclaimed',
      mc_gross1: '99.00',
      payment_gross_3: '3.00',
      mc_gross_4: '',
      status_01: 'Completed',
      mc_gross_0: '1.00',
      unique_id_1: 'REF-1',
    });
    expect(summary.reasonCode).toBe('message-level');
    expect(summary.masspayItems).toEqual([
      { ...EMPTY_ITEM, index: 1, uniqueId: 'REF-1' },
      { ...EMPTY_ITEM, index: 2, gross: '7.00', status: 'Unclaimed' },
      {
        ...EMPTY_ITEM,
        index: 10,
        gross: '5.00',
        status: 'Failed',
        reasonCode: '1001',
        receiverEmail: 'bob@example.com',
      },
    ]);
  });

  it('recognises a Mass Pay message by masspay_txn_id_x even without txn_type', () => {
    const summary = summarizeIpn({ masspay_txn_id_1: 'T1', mc_gross_1: '1.00' });
    expect(summary.masspayItems).toEqual([{ ...EMPTY_ITEM, index: 1, masspayTxnId: 'T1', gross: '1.00' }]);
  });
});

describe('recurring and subscriptions', () => {
  it('recurring payment has money and profile fields', () => {
    expect(summarizeSample('recurring_payment_completed_01.ipn')).toMatchObject({
      txnType: 'recurring_payment',
      txnId: '09P962210D057220P',
      recurringPaymentId: 'I-3RXGL2YU6H4T',
      profileStatus: 'Active',
      gross: '29.95',
      fee: '1.17',
      currency: 'USD',
      business: 'resear_1362421868_biz@gmail.com',
    });
  });

  it('lifecycle messages: currency from currency_code, no gross (amount is not mc_gross)', () => {
    expect(summarizeSample('recurring_payment_profile_created_01.ipn')).toMatchObject({
      txnId: null,
      paymentStatus: null,
      currency: 'USD',
      gross: null,
      fee: null,
      recurringPaymentId: 'I-YT040XS7WWGL',
      profileStatus: 'Active',
    });
    expect(summarizeSample('recurring_payment_profile_cancel_brl_01.ipn')).toMatchObject({
      currency: 'BRL',
      gross: null,
      profileStatus: 'Cancelled',
      testIpn: false,
      receiverEmail: 'billing@caelum.com.br',
    });
    expect(summarizeSample('recurring_payment_suspended_max_failed_01.ipn').profileStatus).toBe('Suspended');
  });

  it('lowercases an email that arrived as %2B-escaped mixed case', () => {
    const summary = summarizeSample('recurring_payment_failed_utf8_01.ipn');
    expect(summary.receiverEmail).toBe('hogehoge+b@gmail.com');
    expect(summary.payerEmail).toBe('hogehoge+p0522@gmail.com');
  });

  it('subscr_signup carries subscrId but no payment', () => {
    expect(summarizeSample('subscr_signup_01.ipn')).toMatchObject({
      subscrId: 'I-1S262863X133',
      txnId: null,
      gross: null,
      currency: 'EUR',
    });
  });
});

describe('field rules', () => {
  it('an empty message summarises to nulls, even for prototype names', () => {
    const summary = summarizeIpn({});
    expect(IpnSummarySchema.parse(summary)).toEqual(summary);
    for (const [key, value] of Object.entries(summary)) {
      if (key === 'testIpn' || key === 'resend') expect(value).toBe(false);
      else if (key === 'masspayItems') expect(value).toEqual([]);
      else expect(value).toBeNull();
    }
  });

  it('blank values are null; custom and profile_status are trimmed; emails lowercased', () => {
    const summary = summarizeIpn({
      txn_id: '   ',
      custom: '  order-42 \t',
      profile_status: ' Active',
      receiver_email: 'Seller@Example.COM',
      business: 'Seller@Example.COM',
      payer_email: 'Buyer@Example.com',
      receiver_id: 'AbC123',
      mc_currency: '',
      currency_code: 'JPY',
      mc_gross: '1000',
    });
    expect(summary).toMatchObject({
      txnId: null,
      custom: 'order-42',
      profileStatus: 'Active',
      receiverEmail: 'seller@example.com',
      business: 'seller@example.com',
      payerEmail: 'buyer@example.com',
      receiverId: 'AbC123',
      currency: 'JPY',
      gross: '1000',
    });
  });

  it('prefers mc_currency over currency_code', () => {
    expect(summarizeIpn({ mc_currency: 'EUR', currency_code: 'USD' }).currency).toBe('EUR');
  });

  it.each<[Record<string, string>, boolean, boolean]>([
    [{ test_ipn: '1', resend: 'true' }, true, true],
    [{ test_ipn: '0', resend: 'false' }, false, false],
    [{ test_ipn: 'true', resend: '1' }, false, false],
  ])('flags %j', (fields, testIpn, resend) => {
    expect(summarizeIpn(fields)).toMatchObject({ testIpn, resend });
  });

  it('carries dispute case fields', () => {
    expect(
      summarizeIpn({
        txn_type: 'new_case',
        case_id: 'PP-D-1234',
        case_type: 'chargeback',
        txn_id: 'ORIG',
        reason_code: 'non_receipt',
      }),
    ).toMatchObject({ txnType: 'new_case', caseId: 'PP-D-1234', caseType: 'chargeback', txnId: 'ORIG', gross: null });
  });

  it('rejects a summary of the wrong shape', () => {
    const bad = { ...summarizeIpn({}), masspayItems: [{ ...EMPTY_ITEM, index: 0 }] };
    expect(IpnSummarySchema.safeParse(bad).success).toBe(false);
    expect(IpnSummarySchema.safeParse({ ...summarizeIpn({}), testIpn: '1' }).success).toBe(false);
  });
});

describe('PAYMENT_TXN_TYPES', () => {
  it('lists the incoming-payment types and not masspay or lifecycle events', () => {
    expect([...PAYMENT_TXN_TYPES].sort()).toEqual([
      'cart',
      'express_checkout',
      'merch_pmt',
      'pro_hosted',
      'recurring_payment',
      'send_money',
      'subscr_payment',
      'virtual_terminal',
      'web_accept',
    ]);
    expect(isPaymentTxnType('web_accept')).toBe(true);
    for (const other of [
      'masspay',
      'subscr_signup',
      'recurring_payment_profile_created',
      'new_case',
      'adjustment',
      'mp_notification',
      null,
    ]) {
      expect(isPaymentTxnType(other)).toBe(false);
    }
  });
});

describe('purity (ipn-summary.ts is bundled into Temporal workflows)', () => {
  it('imports only zod', () => {
    const source = readFileSync(path.resolve(__dirname, '../../src/messages/summary.ts'), 'utf8');
    const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((match) => match[1]);
    expect(imports).toEqual(['zod']);
    expect(source).not.toMatch(/\brequire\(|\bBuffer\b|node:/);
  });
});
