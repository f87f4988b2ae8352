import { formatMinor, isSupportedCurrency, parseAmount } from '../../src/shared/money';
import { checkoutIpn, paypalId, SIM_BUYER, simFee } from './rest/orders';

export const EXPRESS_METHODS = [
  'SetExpressCheckout',
  'GetExpressCheckoutDetails',
  'DoExpressCheckoutPayment',
  'GetTransactionDetails',
];

export interface SimEcToken {
  token: string;
  amount: string;
  currency: string;
  returnUrl: string;
  cancelUrl: string;
  custom: string;
  invnum: string;
  approved: boolean;
  txnId?: string;
  /** DoExpressCheckoutPayment answers by MSGSUBID: a repeat gets the first answer. */
  answers: Map<string, Record<string, string>>;
}

export interface SimEcTxn {
  id: string;
  token: string;
  status: 'Completed' | 'Pending' | 'Denied';
  amount: string;
  fee: string;
  currency: string;
}

type Fail = (code: string, short: string, long: string) => Record<string, string>;
type SendIpn = (listenerUrl: string, body: Buffer) => void;

/**
 * Express Checkout over NVP, beside the profile and Mass Pay methods: SetExpressCheckout gives an
 * EC token (the buyer approves it on the approval page), GetExpressCheckoutDetails shows the payer
 * and whether it was paid, DoExpressCheckoutPayment pays it once (11607 for a second payment, the
 * first answer again for a repeated MSGSUBID), GetTransactionDetails reads a payment. The payment's
 * IPN (txn_type express_checkout) follows the answer.
 */
export class SimExpressCheckout {
  readonly tokens = new Map<string, SimEcToken>();
  readonly txns = new Map<string, SimEcTxn>();
  /** One-shot outcomes of the next payments, FIFO; default Completed. */
  readonly paymentOutcomes: Array<SimEcTxn['status']> = [];
  merchantEmail = 'merchant@nvp-shop.example';
  merchantId = 'SIMNVPMERCH01';
  /** Where the account's IPNs go; none: no IPN is sent. */
  ipnUrl: string | undefined;
  /** GetExpressCheckoutDetails answers this many times as before the payment (a lagging replica). */
  staleDetails = 0;
  /** Whether DoExpressCheckoutPayment honours MSGSUBID (off: a repeat is refused with 11607). */
  honorMsgSubId = true;

  constructor(private readonly sendIpn: SendIpn) {}

  approve(token: string): string {
    const t = this.tokens.get(token);
    if (!t) throw new Error(`no EC token ${token}`);
    t.approved = true;
    const url = new URL(t.returnUrl);
    url.searchParams.set('token', token);
    url.searchParams.set('PayerID', SIM_BUYER.payerId);
    return url.toString();
  }

  cancelUrlOf(token: string): string {
    const t = this.tokens.get(token);
    if (!t) throw new Error(`no EC token ${token}`);
    const url = new URL(t.cancelUrl);
    url.searchParams.set('token', token);
    return url.toString();
  }

  /** A pending payment completes at PayPal later: its IPN follows. */
  settle(txnId: string, status: 'Completed' | 'Denied' = 'Completed'): void {
    const txn = this.txns.get(txnId);
    if (!txn) throw new Error(`no EC payment ${txnId}`);
    txn.status = status;
    this.announce(txn);
  }

  call(p: Record<string, string>, base: object, fail: Fail): Record<string, string> {
    switch (p.METHOD) {
      case 'SetExpressCheckout':
        return this.set(p, base, fail);
      case 'GetExpressCheckoutDetails':
        return this.details(p, base, fail);
      case 'DoExpressCheckoutPayment':
        return this.pay(p, base, fail);
      default:
        return this.transaction(p, base, fail);
    }
  }

  private set(p: Record<string, string>, base: object, fail: Fail): Record<string, string> {
    const currency = p.PAYMENTREQUEST_0_CURRENCYCODE ?? 'USD';
    if (!p.RETURNURL || !p.CANCELURL)
      return fail('10404', 'Transaction refused', 'ReturnURL and CancelURL are required');
    if (!isSupportedCurrency(currency)) return fail('10605', 'Invalid currency', 'Currency is not supported');
    let minor: number;
    try {
      minor = parseAmount(p.PAYMENTREQUEST_0_AMT ?? '', currency);
    } catch {
      return fail('10401', 'Transaction refused because of an invalid argument', 'Order total is invalid');
    }
    if (minor <= 0)
      return fail('10401', 'Transaction refused because of an invalid argument', 'Order total is invalid');
    const token = `EC-${paypalId(17)}`;
    this.tokens.set(token, {
      token,
      amount: formatMinor(minor, currency),
      currency,
      returnUrl: p.RETURNURL,
      cancelUrl: p.CANCELURL,
      custom: p.PAYMENTREQUEST_0_CUSTOM ?? '',
      invnum: p.PAYMENTREQUEST_0_INVNUM ?? '',
      approved: false,
      answers: new Map(),
    });
    return { ...base, ACK: 'Success', TOKEN: token } as Record<string, string>;
  }

  private details(p: Record<string, string>, base: object, fail: Fail): Record<string, string> {
    const t = this.tokens.get(p.TOKEN ?? '');
    if (!t) return fail('10410', 'Invalid token', 'Invalid token.');
    const stale = this.staleDetails > 0;
    if (stale) this.staleDetails--;
    const paid = !!t.txnId && !stale;
    return {
      ...base,
      ACK: 'Success',
      TOKEN: t.token,
      CHECKOUTSTATUS: paid ? 'PaymentActionCompleted' : 'PaymentActionNotInitiated',
      ...(t.approved
        ? {
            PAYERID: SIM_BUYER.payerId,
            EMAIL: SIM_BUYER.email,
            FIRSTNAME: SIM_BUYER.given,
            LASTNAME: SIM_BUYER.surname,
          }
        : {}),
      PAYMENTREQUEST_0_AMT: t.amount,
      PAYMENTREQUEST_0_CURRENCYCODE: t.currency,
      PAYMENTREQUEST_0_CUSTOM: t.custom,
      PAYMENTREQUEST_0_INVNUM: t.invnum,
      ...(paid ? { PAYMENTREQUEST_0_TRANSACTIONID: t.txnId! } : {}),
    } as Record<string, string>;
  }

  private pay(p: Record<string, string>, base: object, fail: Fail): Record<string, string> {
    const t = this.tokens.get(p.TOKEN ?? '');
    if (!t) return fail('10410', 'Invalid token', 'Invalid token.');
    const sub = p.MSGSUBID;
    if (sub && this.honorMsgSubId && t.answers.has(sub)) return { ...t.answers.get(sub)!, ...base, ACK: 'Success' };
    if (t.txnId)
      return fail('11607', 'Duplicate Request', 'A successful transaction has already been completed for this token.');
    if (!t.approved || p.PAYERID !== SIM_BUYER.payerId)
      return fail('10419', 'Express Checkout PayerID is missing', 'PayerID is missing or does not match.');
    if (p.PAYMENTREQUEST_0_AMT !== t.amount || p.PAYMENTREQUEST_0_CURRENCYCODE !== t.currency)
      return fail(
        '10413',
        'Transaction refused because of an invalid argument',
        'The totals of the cart item amounts do not match order amounts.',
      );
    const minor = parseAmount(t.amount, t.currency);
    const txn: SimEcTxn = {
      id: paypalId(17),
      token: t.token,
      status: this.paymentOutcomes.shift() ?? 'Completed',
      amount: t.amount,
      fee: formatMinor(simFee(minor, t.currency), t.currency),
      currency: t.currency,
    };
    this.txns.set(txn.id, txn);
    t.txnId = txn.id;
    const answer: Record<string, string> = {
      TOKEN: t.token,
      PAYMENTINFO_0_TRANSACTIONID: txn.id,
      PAYMENTINFO_0_TRANSACTIONTYPE: 'expresscheckout',
      PAYMENTINFO_0_PAYMENTSTATUS: txn.status,
      ...(txn.status === 'Pending' ? { PAYMENTINFO_0_PENDINGREASON: 'paymentreview' } : {}),
      PAYMENTINFO_0_AMT: txn.amount,
      PAYMENTINFO_0_FEEAMT: txn.fee,
      PAYMENTINFO_0_CURRENCYCODE: txn.currency,
      PAYMENTINFO_0_ACK: 'Success',
    };
    if (sub) t.answers.set(sub, answer);
    // PayPal answers first; the IPN follows.
    setTimeout(() => this.announce(txn), 20);
    return { ...base, ACK: 'Success', ...answer } as Record<string, string>;
  }

  private transaction(p: Record<string, string>, base: object, fail: Fail): Record<string, string> {
    const txn = this.txns.get(p.TRANSACTIONID ?? '');
    if (!txn)
      return fail('10004', 'Transaction refused because of an invalid argument', 'The transaction id is not valid');
    return {
      ...base,
      ACK: 'Success',
      TRANSACTIONID: txn.id,
      TRANSACTIONTYPE: 'expresscheckout',
      PAYMENTSTATUS: txn.status,
      AMT: txn.amount,
      FEEAMT: txn.fee,
      CURRENCYCODE: txn.currency,
      RECEIVEREMAIL: this.merchantEmail,
      RECEIVERID: this.merchantId,
      PAYERID: SIM_BUYER.payerId,
      EMAIL: SIM_BUYER.email,
    } as Record<string, string>;
  }

  private announce(txn: SimEcTxn): void {
    if (!this.ipnUrl || txn.status === 'Denied') return;
    const t = this.tokens.get(txn.token)!;
    this.sendIpn(
      this.ipnUrl,
      checkoutIpn({
        txnType: 'express_checkout',
        txnId: txn.id,
        status: txn.status,
        currency: txn.currency,
        gross: txn.amount,
        fee: txn.fee,
        custom: t.custom,
        invoice: t.invnum,
        receiverEmail: this.merchantEmail,
        receiverId: this.merchantId,
      }),
    );
  }
}
