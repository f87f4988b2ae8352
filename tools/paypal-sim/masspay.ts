import { randomBytes } from 'node:crypto';
import { formatMinor, isSupportedCurrency, parseAmount } from '../../src/shared/money';
import { formatPayPalDate } from '../../src/profiles/state';

/** PayPal's per-call limit of the MassPay NVP API. */
export const SIM_MASSPAY_MAX_ITEMS = 250;
/** PayPal's answer to a unique id it already has for the account (8331: Mass Pay's "duplicate" code). */
export const SIM_DUPLICATE_UNIQUE_ID = '8331';
/** The reason code a `fail-…@` payee's item carries (1001: invalid receiver). */
export const SIM_FAILED_REASON_CODE = '1001';
/** TransactionSearch returns at most this many rows; more are cut with warning 11002. */
export const SEARCH_MAX_RESULTS = 100;
export const SIM_SEARCH_TRUNCATED = '11002';
const SEARCH_CLASSES = [
  'All',
  'Sent',
  'Received',
  'MassPay',
  'MoneyRequest',
  'FundsAdded',
  'FundsWithdrawn',
  'Referral',
  'Fee',
  'Subscription',
  'Dividend',
  'Billpay',
  'Refund',
  'CurrencyConversions',
  'BalanceTransfer',
  'Reversal',
  'Shipping',
  'BalanceAffecting',
  'ECheck',
];
/** TransactionSearch's STATUS values, from a Mass Pay item's status. */
const searchStatus = (status: string) =>
  status === 'Completed'
    ? 'Success'
    : status === 'Pending' || status === 'Unclaimed'
      ? 'Pending'
      : status === 'Returned' || status === 'Reversed'
        ? 'Reversed'
        : 'Denied';
const INVALID_ARGUMENT =
  'Transaction refused because of an invalid argument. See additional error messages for details.';

/** Where and when the simulator announces a MassPay call's results, as PayPal does by IPN. */
export interface MasspaySettings {
  /** The account's IPN listener; null: calls are answered and recorded, no IPN is sent. */
  listenerUrl: string | null;
  /** The account's own address (payer_email of its Mass Pay IPNs). */
  payerEmail: string;
  /** After a successful call: Processed after this, Completed this much later again (real ms). */
  processedDelayMs: number;
  completedDelayMs: number;
}

/**
 * How the simulated PayPal settles an item, by the payee's address: `fail-…@` fails (reason code
 * 1001), `unclaimed-…@` stays Unclaimed at Processed and is Returned at Completed, others complete.
 */
export type SimItemFate = 'Completed' | 'Failed' | 'Unclaimed';
export const fateOf = (email: string): SimItemFate =>
  email.startsWith('fail-') ? 'Failed' : email.startsWith('unclaimed-') ? 'Unclaimed' : 'Completed';

export interface SimMasspayItem {
  uniqueId: string;
  receiverEmail: string;
  amountMinor: number;
  currency: string;
  txnId: string;
  fate: SimItemFate;
  /** What the account's history shows now: Pending until announced, then as its IPNs said. */
  status: string;
}

/** One accepted MassPay call: a payment at PayPal, announced by its own Processed and Completed IPNs. */
export interface SimMasspayPayment {
  account: string;
  /** When PayPal accepted the call: its items' time in TransactionSearch. */
  at: Date;
  correlationId: string;
  currency: string;
  items: SimMasspayItem[];
}

type Fail = (code: string, short: string, long: string) => Record<string, string>;
type Send = (listenerUrl: string, body: Buffer) => void;

/** PayPal's MassPay NVP method, with its checks and error answers, and the IPNs that follow. */
export class MasspaySimulator {
  settings: MasspaySettings = {
    listenerUrl: null,
    payerEmail: 'payouts@paypalsandbox.com',
    processedDelayMs: 50,
    completedDelayMs: 200,
  };
  readonly payments: SimMasspayPayment[] = [];
  /** Every unique id each account (API user) has paid: PayPal refuses them a second time. */
  readonly paidUniqueIds = new Map<string, Set<string>>();

  constructor(private readonly send: Send) {}

  call(p: Record<string, string>, account: string, base: Record<string, string>, fail: Fail): Record<string, string> {
    const argument = (long: string) => fail('10004', INVALID_ARGUMENT, long);
    if ((p.RECEIVERTYPE ?? 'EmailAddress') !== 'EmailAddress') {
      // PhoneNumber and UserID are PayPal's too, but not simulated.
      return fail('10001', INVALID_ARGUMENT, 'The masspay receiver_type is not a recognizable type');
    }
    const currency = p.CURRENCYCODE;
    if (!currency) return argument('The currency is missing');
    if (!isSupportedCurrency(currency)) return argument('Currency is not supported');
    const indexes = new Set<number>();
    for (const key of Object.keys(p)) {
      const m = /^L_(?:EMAIL|AMT|UNIQUEID|NOTE)(\d+)$/.exec(key);
      if (m) indexes.add(Number(m[1]));
    }
    if (indexes.size === 0) return argument('The number of input records is less than or equal to zero');
    if (indexes.size > SIM_MASSPAY_MAX_ITEMS)
      return argument('The number of input records is greater than maximum allowed');
    const paid = this.paidUniqueIds.get(account) ?? new Set<string>();
    const items: SimMasspayItem[] = [];
    const seen = new Set<string>();
    for (const n of [...indexes].sort((a, b) => a - b)) {
      const email = p[`L_EMAIL${n}`];
      const amt = p[`L_AMT${n}`];
      const uniqueId = p[`L_UNIQUEID${n}`] ?? '';
      if (!email || !/^[^@\s]+@[^@\s]+$/.test(email))
        return argument(`L_EMAIL${n}: the receiver email is missing or invalid`);
      if (!amt) return argument('The amount is missing');
      let amountMinor: number;
      try {
        amountMinor = parseAmount(amt, currency);
      } catch {
        return argument('The amount is not a valid number');
      }
      if (amountMinor <= 0) return argument('The amount is less than or equal to zero');
      if (uniqueId.length > 30)
        return argument('The unique id string length exceeds the maximum limit of 30 characters');
      if (/\s/.test(uniqueId)) return argument('The unique id string contains a space as a character');
      if ((p[`L_NOTE${n}`] ?? '').length > 4000) {
        return argument('The note string length exceeds the maximum limit of 4000 characters');
      }
      if (uniqueId && (paid.has(uniqueId) || seen.has(uniqueId))) {
        return fail(SIM_DUPLICATE_UNIQUE_ID, 'Duplicate unique ID', `The unique id ${uniqueId} was already used`);
      }
      if (uniqueId) seen.add(uniqueId);
      const txnId = randomBytes(9).toString('hex').slice(0, 17).toUpperCase();
      items.push({
        uniqueId,
        receiverEmail: email.toLowerCase(),
        amountMinor,
        currency,
        txnId,
        fate: fateOf(email),
        status: 'Pending',
      });
    }
    // Accepted whole or not at all: only now are the unique ids spent.
    for (const id of seen) paid.add(id);
    this.paidUniqueIds.set(account, paid);
    const payment = { account, at: new Date(), correlationId: base.CORRELATIONID ?? '', currency, items };
    this.payments.push(payment);
    this.announce(payment);
    return { ...base, ACK: 'Success' };
  }

  /** PayPal answers at once and pays later: Processed, then Completed, each an IPN with every item. */
  private announce(payment: SimMasspayPayment): void {
    const { listenerUrl, processedDelayMs, completedDelayMs } = this.settings;
    if (!listenerUrl) return;
    const later = (ms: number, fn: () => void) => setTimeout(fn, ms).unref();
    later(processedDelayMs, () => {
      this.send(listenerUrl, this.ipn(payment, 'Processed'));
      later(completedDelayMs, () => this.send(listenerUrl, this.ipn(payment, 'Completed')));
    });
  }

  /** Shaped like PayPal's Mass Pay samples: message-level payer fields, then `_x` fields per item. */
  ipn(payment: SimMasspayPayment, status: 'Processed' | 'Completed'): Buffer {
    const fields: Record<string, string> = {
      txn_type: 'masspay',
      payment_status: status,
      payment_date: formatPayPalDate(new Date().toISOString()),
      payer_email: this.settings.payerEmail,
      payer_id: 'SIMMASSPAYER1',
      payer_status: 'verified',
      payer_business_name: 'Simulated Payer',
      first_name: 'Sim',
      last_name: 'Payer',
      residence_country: 'US',
      test_ipn: '1',
      charset: 'UTF-8',
      notify_version: '3.8',
      verify_sign: randomBytes(30).toString('base64url'),
      ipn_track_id: randomBytes(6).toString('hex'),
    };
    payment.items.forEach((item, i) => {
      const x = i + 1;
      const itemStatus = item.fate === 'Unclaimed' ? (status === 'Processed' ? 'Unclaimed' : 'Returned') : item.fate;
      item.status = itemStatus;
      const money = (m: number) => formatMinor(m, item.currency);
      // Mass Pay fees: 2% per payment, at most 1.00 (US), paid by the sender, on payments made.
      const fee = itemStatus === 'Completed' ? Math.min(Math.round(item.amountMinor * 0.02), 100) : 0;
      const usd = item.currency === 'USD';
      Object.assign(fields, {
        [`masspay_txn_id_${x}`]: item.txnId,
        [`unique_id_${x}`]: item.uniqueId,
        [`receiver_email_${x}`]: item.receiverEmail,
        [`status_${x}`]: itemStatus,
        [`mc_gross_${x}`]: money(item.amountMinor),
        [`mc_fee_${x}`]: money(fee),
        [`mc_currency_${x}`]: item.currency,
        // Deprecated, and empty for currencies other than USD.
        [`payment_gross_${x}`]: usd ? money(item.amountMinor) : '',
        [`payment_fee_${x}`]: usd ? money(fee) : '',
        ...(itemStatus === 'Failed' ? { [`reason_code_${x}`]: SIM_FAILED_REASON_CODE } : {}),
      });
    });
    return Buffer.from(new URLSearchParams(fields).toString(), 'utf8');
  }

  /**
   * PayPal's TransactionSearch over this account's Mass Pay payments (the only history the simulator
   * keeps): STARTDATE required, ENDDATE, RECEIVER / EMAIL (the payee), TRANSACTIONID, AMT,
   * CURRENCYCODE, TRANSACTIONCLASS (All, Sent, MassPay match; other classes hold none of them),
   * STATUS. Newest first; at most 100 rows, then ACK=SuccessWithWarning with 11002, as PayPal does.
   * Money sent shows negative: L_AMTn, L_FEEAMTn, L_NETAMTn.
   */
  search(p: Record<string, string>, account: string, base: Record<string, string>, fail: Fail): Record<string, string> {
    const date = (name: string) => {
      const v = p[name];
      if (v === undefined) return undefined;
      return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(v) ? Date.parse(v) : NaN;
    };
    const start = date('STARTDATE');
    if (start === undefined) return fail('10003', 'Missing argument.', 'Start date is a required parameter');
    if (Number.isNaN(start)) return fail('10004', 'Invalid argument', 'Start date is invalid');
    const end = date('ENDDATE');
    if (Number.isNaN(end)) return fail('10004', 'Invalid argument', 'End date is invalid');
    const kind = p.TRANSACTIONCLASS ?? 'All';
    if (!SEARCH_CLASSES.includes(kind)) return fail('10004', 'Invalid argument', 'Invalid transaction class');
    const payee = (p.RECEIVER ?? p.EMAIL)?.trim().toLowerCase();
    const rows = this.payments
      .filter(
        (pay) => pay.account === account && pay.at.getTime() >= start && (end === undefined || pay.at.getTime() <= end),
      )
      .filter(() => ['All', 'Sent', 'MassPay'].includes(kind))
      .flatMap((pay) => pay.items.map((item) => ({ pay, item })))
      .filter(({ item }) => payee === undefined || item.receiverEmail === payee)
      .filter(({ item }) => !p.TRANSACTIONID || item.txnId === p.TRANSACTIONID)
      .filter(({ item }) => !p.CURRENCYCODE || item.currency === p.CURRENCYCODE)
      .filter(({ item }) => !p.AMT || formatMinor(item.amountMinor, item.currency) === p.AMT.replace(/^-/, ''))
      .filter(({ item }) => !p.STATUS || searchStatus(item.status) === p.STATUS)
      .sort((a, b) => b.pay.at.getTime() - a.pay.at.getTime());
    const answer: Record<string, string> = { ...base, ACK: 'Success' };
    rows.slice(0, SEARCH_MAX_RESULTS).forEach(({ pay, item }, n) => {
      const money = (m: number) => formatMinor(m, item.currency);
      const fee = item.status === 'Completed' ? Math.min(Math.round(item.amountMinor * 0.02), 100) : 0;
      Object.assign(answer, {
        [`L_TIMESTAMP${n}`]: pay.at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        [`L_TIMEZONE${n}`]: 'GMT',
        [`L_TYPE${n}`]: 'Payment',
        [`L_EMAIL${n}`]: item.receiverEmail,
        [`L_TRANSACTIONID${n}`]: item.txnId,
        [`L_STATUS${n}`]: item.status,
        [`L_AMT${n}`]: `-${money(item.amountMinor)}`,
        [`L_CURRENCYCODE${n}`]: item.currency,
        [`L_FEEAMT${n}`]: `-${money(fee)}`,
        [`L_NETAMT${n}`]: `-${money(item.amountMinor + fee)}`,
      });
    });
    if (rows.length > SEARCH_MAX_RESULTS) {
      Object.assign(answer, {
        ACK: 'SuccessWithWarning',
        L_ERRORCODE0: SIM_SEARCH_TRUNCATED,
        L_SHORTMESSAGE0: 'Search warning',
        L_LONGMESSAGE0:
          'The number of results were truncated. ' +
          'Please change your search parameters if you wish to see all your results.',
        L_SEVERITYCODE0: 'Warning',
      });
    }
    return answer;
  }
}
