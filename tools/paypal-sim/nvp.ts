import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatMinor, parseAmount } from '../../src/shared/money';
import { formatPayPalDate } from '../../src/profiles/state';
import { readBody, sendText } from './http-util';
import { MasspaySimulator } from './masspay';
import { EXPRESS_METHODS, SimExpressCheckout } from './express';

export const NVP_PATH = '/nvp';
const DAY_MS = 24 * 3600 * 1000;

/** Who pays a profile, as PayPal's profile details show them (personal data the service must not spread). */
export interface SimSubscriber {
  name: string;
  street: string;
  city: string;
  state: string;
  zip: string;
  countryCode: string;
}
export const SIM_SUBSCRIBER: SimSubscriber = {
  name: 'Philippa Quenby-Sim',
  street: '4821 Larkspur Terrace',
  city: 'San Jose',
  state: 'CA',
  zip: '95131',
  countryCode: 'US',
};

/** A recurring profile as PayPal holds it; tests create and change them (the latter "behind our back"). */
export interface SimProfile {
  id: string;
  status: 'Pending' | 'Active' | 'Suspended' | 'Cancelled' | 'Expired';
  currency: string;
  amountPerCycleMinor: number;
  outstandingMinor: number;
  failedPaymentCount: number;
  /** ISO, or null when none is scheduled. */
  nextBillingDate: string | null;
  /** Where PayPal sends this profile's IPNs, and who pays. */
  listenerUrl: string;
  receiverEmail: string;
  payerEmail: string;
  /** The next BillOutstandingAmount's payment fails (its IPN says so). */
  failNextBill?: boolean;
  /** A bill PayPal accepted whose IPN has not been sent yet. */
  billQueued?: boolean;
  /** Default SIM_SUBSCRIBER. */
  subscriber?: SimSubscriber;
  /** A bill is collected (the balance falls) but its IPN waits for `releaseHeldIpns()`: a slow IPN. */
  holdBillIpn?: boolean;
}

export interface NvpCallRecord {
  at: Date;
  method: string;
  /** Without USER, PWD and SIGNATURE. */
  params: Record<string, string>;
  answer: Record<string, string>;
  /** The call was handled, but its answer never reached the caller (a `lost_answer` fault). */
  answerLost?: boolean;
}

/**
 * One-shot misbehaviour of the NVP endpoint, consumed FIFO, one per call: `lost_answer` handles the
 * call (PayPal acts on it) and then answers 500, as if the answer were lost on its way back;
 * `unavailable` answers 503 without handling it.
 */
export type NvpFault = ({ kind: 'lost_answer' } | { kind: 'unavailable' }) & {
  /** Only a call of this method takes the fault (the first such call); default: the next call. */
  method?: string;
};

type SendIpn = (args: { listenerUrl: string; body: Buffer }) => { done: Promise<unknown> };

/**
 * PayPal's NVP API for the three recurring-profile operations, MassPay and TransactionSearch (over
 * the Mass Pay payments), with PayPal's checks and error codes, credentials checked. A bill's result
 * is announced the way PayPal does: by IPN, after the answer.
 */
export class NvpSimulator {
  readonly profiles = new Map<string, SimProfile>();
  readonly calls: NvpCallRecord[] = [];
  credentials: { username: string; password: string; signature: string } | null = null;
  readonly faults: NvpFault[] = [];
  /** The MassPay method: its payments, the unique ids each account spent, where its IPNs go. */
  readonly masspay: MasspaySimulator;
  /** Express Checkout (top-ups): tokens, payments, where their IPNs go. */
  readonly express: SimExpressCheckout;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly heldIpns: Array<() => void> = [];

  constructor(private readonly sendIpn: SendIpn) {
    this.masspay = new MasspaySimulator((listenerUrl, body) => this.track(this.sendIpn({ listenerUrl, body }).done));
    this.express = new SimExpressCheckout((listenerUrl, body) => this.track(this.sendIpn({ listenerUrl, body }).done));
  }

  upsertProfile(p: SimProfile): SimProfile {
    this.profiles.set(p.id, { ...p });
    return this.profiles.get(p.id)!;
  }

  /** Sends the bill IPNs held by `holdBillIpn`; how many. */
  releaseHeldIpns(): number {
    const held = this.heldIpns.splice(0);
    for (const send of held) send();
    return held.length;
  }

  /** Resolves when every IPN the simulator decided to send has been delivered (or given up). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // 250 MassPay items with notes: a few hundred KB.
    const raw = (await readBody(req, 2 * 1024 * 1024)).toString('utf8');
    const all = Object.fromEntries(new URLSearchParams(raw));
    const { USER, PWD, SIGNATURE, ...params } = all;
    const at = this.faults.findIndex((f) => f.method === undefined || f.method === params.METHOD);
    const fault = at < 0 ? undefined : this.faults.splice(at, 1)[0];
    if (fault?.kind === 'unavailable') {
      this.calls.push({ at: new Date(), method: params.METHOD ?? '', params, answer: {}, answerLost: true });
      sendText(res, 503, '<html><body>Service Unavailable</body></html>', 'text/html; charset=utf-8');
      return;
    }
    const answer = this.answer(params, { USER, PWD, SIGNATURE });
    const lost = fault?.kind === 'lost_answer';
    this.calls.push({
      at: new Date(),
      method: params.METHOD ?? '',
      params,
      answer,
      ...(lost ? { answerLost: true } : {}),
    });
    if (lost) {
      sendText(res, 500, '<html><body>Internal Server Error</body></html>', 'text/html; charset=utf-8');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(new URLSearchParams(answer).toString());
  }

  private answer(p: Record<string, string>, creds: Record<string, string | undefined>): Record<string, string> {
    const base = {
      TIMESTAMP: new Date().toISOString(),
      CORRELATIONID: randomBytes(6).toString('hex'),
      VERSION: p.VERSION ?? '204.0',
      BUILD: '1',
    };
    const fail = (code: string, short: string, long: string) => ({
      ...base,
      ACK: 'Failure',
      L_ERRORCODE0: code,
      L_SHORTMESSAGE0: short,
      L_LONGMESSAGE0: long,
      L_SEVERITYCODE0: 'Error',
    });
    const c = this.credentials;
    if (!c || creds.USER !== c.username || creds.PWD !== c.password || creds.SIGNATURE !== c.signature) {
      return fail('10002', 'Security error', 'Security header is not valid');
    }
    if (p.METHOD === 'MassPay') return this.masspay.call(p, c.username, base, fail);
    if (p.METHOD === 'TransactionSearch') return this.masspay.search(p, c.username, base, fail);
    if (EXPRESS_METHODS.includes(p.METHOD ?? '')) return this.express.call(p, base, fail);
    const profile = p.PROFILEID ? this.profiles.get(p.PROFILEID) : undefined;
    if (!profile) return fail('11552', 'Invalid profile ID', 'The profile ID is invalid');
    switch (p.METHOD) {
      case 'GetRecurringPaymentsProfileDetails': {
        const who = profile.subscriber ?? SIM_SUBSCRIBER;
        return {
          ...base,
          ACK: 'Success',
          PROFILEID: profile.id,
          // As PayPal does: the subscriber and where to ship, beside the profile's own fields.
          SUBSCRIBERNAME: who.name,
          SHIPTONAME: who.name,
          SHIPTOSTREET: who.street,
          SHIPTOCITY: who.city,
          SHIPTOSTATE: who.state,
          SHIPTOZIP: who.zip,
          SHIPTOCOUNTRYCODE: who.countryCode,
          EMAIL: profile.payerEmail,
          STATUS: profile.status,
          CURRENCYCODE: profile.currency,
          AMT: formatMinor(profile.amountPerCycleMinor, profile.currency),
          OUTSTANDINGBALANCE: formatMinor(profile.outstandingMinor, profile.currency),
          FAILEDPAYMENTCOUNT: String(profile.failedPaymentCount),
          ...(profile.nextBillingDate ? { NEXTBILLINGDATE: profile.nextBillingDate } : {}),
        };
      }
      case 'ManageRecurringPaymentsProfileStatus':
        return this.manage(profile, p.ACTION ?? '', base, fail);
      case 'BillOutstandingAmount':
        return this.bill(profile, p.AMT, p.NOTE ?? '', base, fail);
      default:
        return fail('81002', 'Unspecified Method', 'Method Specified is not Supported');
    }
  }

  private manage(
    profile: SimProfile,
    action: string,
    base: object,
    fail: (c: string, s: string, l: string) => Record<string, string>,
  ) {
    const ok = (status: SimProfile['status']) => {
      profile.status = status;
      return { ...base, ACK: 'Success', PROFILEID: profile.id };
    };
    switch (action) {
      case 'Cancel':
        if (profile.status !== 'Active' && profile.status !== 'Suspended') {
          return fail(
            '11556',
            'Invalid profile status for cancel action',
            'The profile must be active or suspended to cancel',
          );
        }
        return ok('Cancelled');
      case 'Suspend':
        if (profile.status !== 'Active')
          return fail('11557', 'Invalid profile status for suspend action', 'The profile must be active to suspend');
        return ok('Suspended');
      case 'Reactivate':
        if (profile.status !== 'Suspended')
          return fail(
            '11558',
            'Invalid profile status for reactivate action',
            'The profile must be suspended to reactivate',
          );
        return ok('Active');
      default:
        return fail('11555', 'Invalid action', 'The action is not valid');
    }
  }

  private bill(
    profile: SimProfile,
    amt: string | undefined,
    note: string,
    base: object,
    fail: (c: string, s: string, l: string) => Record<string, string>,
  ) {
    if (profile.status !== 'Active' && profile.status !== 'Suspended') {
      return fail('11556', 'Invalid profile status', 'The profile must be active or suspended');
    }
    if (profile.outstandingMinor <= 0)
      return fail('11585', 'No outstanding balance', 'The profile has no outstanding balance');
    let amount: number;
    try {
      amount = amt === undefined ? profile.outstandingMinor : parseAmount(amt, profile.currency);
    } catch {
      return fail('10401', 'Invalid amount', 'The amount is not valid');
    }
    if (amount <= 0 || amount > profile.outstandingMinor)
      return fail('11576', 'Invalid amount', 'The amount exceeds the outstanding balance');
    if (profile.billQueued)
      return fail('11577', 'Outstanding payment already queued', 'Another outstanding payment is already queued');
    const next = profile.nextBillingDate ? Date.parse(profile.nextBillingDate) - Date.now() : NaN;
    if (Number.isFinite(next) && next >= 0 && next < DAY_MS) {
      return fail('11578', 'Payment too close', 'Cannot bill within 24 hours of a scheduled payment');
    }
    profile.billQueued = true;
    const failing = profile.failNextBill === true;
    profile.failNextBill = false;
    // PayPal answers at once and collects later; the IPN follows the answer.
    setTimeout(() => this.announceBill(profile, amount, failing, note), 50);
    return { ...base, ACK: 'Success', PROFILEID: profile.id };
  }

  private announceBill(profile: SimProfile, amount: number, failed: boolean, note: string): void {
    profile.billQueued = false;
    if (!failed) profile.outstandingMinor -= amount;
    const money = (m: number) => formatMinor(m, profile.currency);
    const fields: Record<string, string> = {
      txn_type: failed ? 'recurring_payment_outstanding_payment_failed' : 'recurring_payment_outstanding_payment',
      recurring_payment_id: profile.id,
      profile_status: profile.status,
      currency_code: profile.currency,
      amount_per_cycle: money(profile.amountPerCycleMinor),
      amount: money(amount),
      outstanding_balance: money(profile.outstandingMinor),
      next_payment_date: profile.nextBillingDate ? formatPayPalDate(profile.nextBillingDate) : 'N/A',
      payer_email: profile.payerEmail,
      receiver_email: profile.receiverEmail,
      test_ipn: '1',
      charset: 'UTF-8',
      notify_version: '3.8',
      ipn_track_id: randomBytes(6).toString('hex'),
      ...(note ? { memo: note } : {}),
      ...(failed
        ? {}
        : {
            txn_id: `SIM${randomBytes(7).toString('hex').toUpperCase()}`,
            payment_status: 'Completed',
            payment_date: formatPayPalDate(new Date().toISOString()),
            mc_gross: money(amount),
            mc_fee: money(0),
            mc_currency: profile.currency,
          }),
    };
    const body = Buffer.from(new URLSearchParams(fields).toString(), 'utf8');
    const send = () => this.track(this.sendIpn({ listenerUrl: profile.listenerUrl, body }).done);
    if (profile.holdBillIpn) this.heldIpns.push(send);
    else send();
  }

  private track(done: Promise<unknown>): void {
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }
}
