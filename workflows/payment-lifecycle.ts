import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { formatMinor } from '../src/domain/money';
import { INFORMATIONAL_FLAGS, initialPaymentState, type LifecycleEvent, type PaymentState } from '../src/domain/payment-state';
import { CustomerIdKey, FlagsKey, PaymentStatusKey } from './search-attributes';
import type { AssignCustomerAction, InboxItem, MessageOutcomeRecord, OperatorAction, PaymentLifecycleInput } from './types';

const act = proxyActivities<Activities>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '500ms', maximumInterval: '30s' },
});

export const ipnEventSignal = defineSignal<[LifecycleEvent]>('ipnEvent');
export const assignCustomerSignal = defineSignal<[AssignCustomerAction]>('assignCustomer');
export const approveSignal = defineSignal<[OperatorAction]>('approve');
export const rejectSignal = defineSignal<[OperatorAction]>('reject');
export const paymentStateQuery = defineQuery<PaymentState>('state');

const NO_MONEY_STATUSES = ['Denied', 'Failed', 'Expired', 'Voided', 'Declined'];

/**
 * The life of one PayPal transaction, one event at a time: credit it once when Completed
 * (whatever came before), apply refunds, reversals and their cancellations against it, and wait
 * for a person whenever automation cannot decide. Money moves only through idempotent ledger
 * postings keyed by PayPal transaction, so replays, retries and resends never move it twice.
 */
export async function paymentLifecycle(input: PaymentLifecycleInput): Promise<PaymentState> {
  const inbox: InboxItem[] = [];
  setHandler(ipnEventSignal, (event) => void inbox.push({ type: 'ipn', event }), { description: 'A verified IPN for this transaction (sent by processIpn).' });
  setHandler(assignCustomerSignal, (action) => void inbox.push({ type: 'assign', action }), { description: 'Operator: credit this payment to a customer. Input: {"customerId": "...", "operator": "...", "reason": "..."}' });
  setHandler(approveSignal, (action) => void inbox.push({ type: 'approve', action }), { description: 'Operator: approve a held payment despite its flags, or acknowledge a dispute. Input: {"operator": "...", "reason": "..."}' });
  setHandler(rejectSignal, (action) => void inbox.push({ type: 'reject', action }), { description: 'Operator: reject what is held; no money moves. Input: {"operator": "...", "reason": "..."}' });

  const state = (await act.loadPaymentState({ integrationId: input.integrationId, txnId: input.paymentTxnId })) ?? initialPaymentState(input.integrationId, input.paymentTxnId);
  setHandler(paymentStateQuery, () => state);
  const process = new PaymentProcess(state);

  for (;;) {
    const needsPerson = state.hold !== null || state.attention.length > 0;
    if (needsPerson) await condition(() => inbox.length > 0);
    else if (!(await condition(() => inbox.length > 0, `${input.idleCloseSeconds}s`))) break;
    while (inbox.length > 0) {
      const outcome = await process.handle(inbox.shift()!);
      await process.publish();
      // Only once the payment's state is saved: whoever reads the message then finds both agree.
      if (outcome) await act.recordMessageOutcome(outcome);
    }
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof paymentLifecycle>(input);
    }
  }
  await condition(allHandlersFinished);
  return state;
}

class PaymentProcess {
  constructor(private readonly s: PaymentState) {}

  /** Applies one item; for an IPN, returns the outcome to record on its message. */
  async handle(item: InboxItem): Promise<MessageOutcomeRecord | void> {
    switch (item.type) {
      case 'ipn':
        return this.onIpn(item.event);
      case 'assign':
        return this.onAssign(item.action);
      case 'approve':
        return this.onApprove(item.action);
      case 'reject':
        return this.onReject(item.action);
    }
  }

  /** Saves the state and shows it to ops (search attributes, Web UI details). */
  async publish(): Promise<void> {
    const s = this.s;
    const flags = [...new Set([...(s.hold ? ['held', s.hold.reason] : []), ...s.attention, ...(s.payment?.flags ?? [])])];
    upsertSearchAttributes([
      { key: PaymentStatusKey, value: s.paymentStatus ?? s.phase },
      { key: FlagsKey, value: flags },
      ...(s.customerId ? [{ key: CustomerIdKey, value: s.customerId }] : []),
    ]);
    const money = s.currency ? ` credited ${formatMinor(s.creditedMinor, s.currency)} ${s.currency}, debited ${formatMinor(s.debitedMinor, s.currency)}` : '';
    const hold = s.hold ? `\n\nHELD: **${s.hold.reason}**. Signal \`assignCustomer\`, \`approve\` or \`reject\`.` : '';
    setCurrentDetails(`**${s.phase}** (${s.paymentStatus ?? 'no status yet'}), customer ${s.customerId ?? 'unknown'};${money}${hold}`);
    await act.savePaymentState(s);
  }

  private note(what: string, messageId: string | null = null): void {
    this.s.history.push({ at: new Date().toISOString(), messageId, what });
    if (this.s.history.length > 100) this.s.history.splice(0, this.s.history.length - 100);
  }

  private async onIpn(e: LifecycleEvent): Promise<MessageOutcomeRecord> {
    const s = this.s;
    const key = e.kind === 'dispute' ? `case:${e.caseId ?? e.messageId}` : `${e.txnId}:${e.paymentStatus}`;
    if (s.processedKeys.includes(key)) {
      this.note(`duplicate of ${key}: ignored`, e.messageId);
      return { messageId: e.messageId, outcome: 'duplicate', detail: `${key} was already applied`, addFlags: ['duplicate'] };
    }
    s.processedKeys.push(key);
    switch (e.kind) {
      case 'payment':
        await this.onPaymentStatus(e);
        break;
      case 'dispute':
        s.attention.push(`dispute${e.caseId ? `:${e.caseId}` : ''}`);
        this.note(`dispute opened (${e.caseId ?? 'no case id'})`, e.messageId);
        await act.raiseAlert({ kind: 'dispute_opened', messageId: e.messageId, detail: `dispute on ${s.txnId}` });
        break;
      default:
        s.waiting.push(e);
        this.note(`${e.kind} ${e.txnId} received`, e.messageId);
        await this.applyWaiting();
    }
    return { messageId: e.messageId, outcome: `applied:${s.phase}`, detail: s.hold?.reason ?? s.history.at(-1)?.what ?? '' };
  }

  private async onPaymentStatus(e: LifecycleEvent): Promise<void> {
    const s = this.s;
    // Nothing follows Completed on the payment's own txn (later money moves come as refunds and
    // reversals with their own txn ids): a status arriving after it was sent earlier and delivered
    // late, and must not replace the Completed a held payment is waiting to credit.
    if (s.phase === 'credited' || s.phase === 'rejected' || s.payment?.paymentStatus === 'Completed') {
      this.note(`${e.paymentStatus} after ${s.payment?.paymentStatus === 'Completed' ? `Completed (${s.phase})` : s.phase}: recorded`, e.messageId);
      return;
    }
    s.paymentStatus = e.paymentStatus;
    s.payment = e;
    s.currency = e.currency;
    if (e.paymentStatus === 'Completed') {
      await this.credit(null);
    } else if (NO_MONEY_STATUSES.includes(e.paymentStatus)) {
      if (s.hold?.on === 'payment') s.hold = null;
      s.phase = 'not_paid';
      this.note(`${e.paymentStatus}: no money moves`, e.messageId);
    } else {
      // Pending (any pending_reason), Created, Processed: wait for Completed.
      if (s.hold?.on !== 'payment') s.phase = 'pending';
      this.note(`${e.paymentStatus}${e.pendingReason ? ` (${e.pendingReason})` : ''}: waiting for Completed`, e.messageId);
    }
  }

  /** Credits the payment once; holds it instead when a check failed or no customer matches. */
  private async credit(by: OperatorAction | null): Promise<void> {
    const s = this.s;
    const p = s.payment!;
    const blocking = p.flags.filter((f) => !INFORMATIONAL_FLAGS.includes(f) && !s.approvedFlags.includes(f));
    if (blocking.length > 0) return this.holdOn('payment', `checks_failed:${blocking.join(',')}`, p.messageId);
    if (p.creditMinor === null || p.creditMinor <= 0 || !p.currency) return this.holdOn('payment', 'amount_unusable', p.messageId);
    const customerId = s.customerId ?? (await act.matchCustomer({ integrationId: s.integrationId, custom: p.custom, payerEmail: p.payerEmail }));
    if (!customerId) return this.holdOn('payment', 'no_customer_match', p.messageId);
    s.customerId = customerId;
    await act.postToLedger({
      customerId,
      currency: p.currency,
      mode: p.sandbox ? 'sandbox' : 'live',
      amountMinor: p.creditMinor,
      idempotencyKey: `credit:${s.integrationId}:${s.txnId}`,
      reason: 'payment',
      integrationId: s.integrationId,
      txnId: s.txnId,
      messageId: p.messageId,
      operator: by?.operator,
      note: by?.reason,
    });
    s.creditedMinor = p.creditMinor;
    s.phase = 'credited';
    s.hold = null;
    this.note(`credited ${formatMinor(p.creditMinor, p.currency)} ${p.currency} to ${customerId}${by ? ` (approved by ${by.operator})` : ''}`, p.messageId);
    await this.applyWaiting();
  }

  /** Applies refunds, reversals and cancellations in arrival order once the payment is credited. */
  private async applyWaiting(by: OperatorAction | null = null): Promise<void> {
    const s = this.s;
    while (s.phase === 'credited' && s.hold === null && s.waiting.length > 0) {
      const e = s.waiting[0]!;
      if (e.flags.some((f) => !INFORMATIONAL_FLAGS.includes(f) && !s.approvedFlags.includes(f)) || e.creditMinor === null || e.creditMinor <= 0) {
        return this.holdOn('adjustment', `adjustment_checks_failed:${e.txnId}`, e.messageId);
      }
      if (e.currency !== s.currency) return this.holdOn('adjustment', `adjustment_currency_mismatch:${e.txnId}`, e.messageId);
      let amount = e.creditMinor;
      if (e.kind === 'canceled_reversal') {
        const outstanding = s.reversedMinor;
        if (outstanding <= 0) {
          // Its reversal has not arrived yet (PayPal delivers out of order): it waits behind the
          // others, which must not be blocked by it; the reversal itself may be among them.
          if (s.waiting.every((w) => w.kind === 'canceled_reversal')) return;
          s.waiting.push(s.waiting.shift()!);
          continue;
        }
        amount = Math.min(amount, outstanding);
        await this.post(e, amount, by);
        s.reversedMinor -= amount;
        s.debitedMinor -= amount;
      } else {
        const remaining = s.creditedMinor - s.debitedMinor;
        if (amount > remaining) {
          if (!s.capApproved) return this.holdOn('adjustment', `${e.kind}_exceeds_original:${e.txnId}`, e.messageId);
          amount = remaining;
          s.capApproved = false;
        }
        if (amount > 0) await this.post(e, -amount, by);
        s.debitedMinor += amount;
        if (e.kind === 'reversal') s.reversedMinor += amount;
      }
      s.waiting.shift();
      this.note(`${e.kind} ${e.txnId}: ${formatMinor(e.kind === 'canceled_reversal' ? amount : -amount, s.currency!)} ${s.currency}`, e.messageId);
      by = null; // the operator decided about the held adjustment, not the ones behind it
    }
  }

  private async post(e: LifecycleEvent, amountMinor: number, by: OperatorAction | null): Promise<void> {
    const s = this.s;
    await act.postToLedger({
      customerId: s.customerId!,
      currency: s.currency!,
      mode: s.payment!.sandbox ? 'sandbox' : 'live', // an adjustment moves the money where its payment went
      amountMinor,
      idempotencyKey: `${e.kind}:${s.integrationId}:${e.txnId}:${e.paymentStatus}`,
      reason: e.kind === 'canceled_reversal' ? 'canceled_reversal' : e.kind === 'reversal' ? 'reversal' : 'refund',
      integrationId: s.integrationId,
      txnId: e.txnId,
      parentTxnId: s.txnId,
      messageId: e.messageId,
      operator: by?.operator,
      note: by?.reason,
    });
  }

  private async holdOn(on: 'payment' | 'adjustment', reason: string, messageId: string): Promise<void> {
    const s = this.s;
    if (s.hold?.reason === reason) return;
    s.hold = { reason, on, messageId, since: new Date().toISOString() };
    if (on === 'payment') s.phase = 'held';
    this.note(`held: ${reason}`, messageId);
    await act.raiseAlert({ kind: 'payment_held', messageId, detail: `${s.txnId}: ${reason}` });
  }

  private async onAssign(a: AssignCustomerAction): Promise<void> {
    const s = this.s;
    const exists = await act.customerExists(a.customerId);
    await act.audit({ actor: a.operator, action: exists ? 'assign_customer' : 'assign_customer_refused', reason: a.reason, integrationId: s.integrationId, txnId: s.txnId, customerId: a.customerId, details: { hold: s.hold?.reason ?? null } });
    if (!exists) return this.note(`${a.operator} tried to assign unknown customer ${a.customerId}`);
    if (s.creditedMinor > 0 && s.customerId && s.customerId !== a.customerId) {
      return this.note(`${a.operator} tried to reassign a credited payment from ${s.customerId}: refused`);
    }
    s.customerId = a.customerId;
    this.note(`${a.operator} assigned customer ${a.customerId}: ${a.reason}`);
    await this.resume(a);
  }

  private async onApprove(a: OperatorAction): Promise<void> {
    const s = this.s;
    await act.audit({ actor: a.operator, action: 'approve', reason: a.reason, integrationId: s.integrationId, txnId: s.txnId, customerId: s.customerId ?? undefined, details: { hold: s.hold?.reason ?? null, attention: s.attention } });
    this.note(`${a.operator} approved: ${a.reason}`);
    s.attention = [];
    if (!s.hold) return;
    if (s.hold.on === 'payment') s.approvedFlags.push(...(s.payment?.flags ?? []));
    else {
      s.approvedFlags.push(...(s.waiting[0]?.flags ?? []));
      // Capping is approved only by approving an over-limit hold, and used up by the adjustment
      // held; approving a flagged one must not silently cap a later refund.
      s.capApproved = /_exceeds_original:/.test(s.hold.reason);
    }
    await this.resume(a);
  }

  private async onReject(a: OperatorAction): Promise<void> {
    const s = this.s;
    await act.audit({ actor: a.operator, action: 'reject', reason: a.reason, integrationId: s.integrationId, txnId: s.txnId, customerId: s.customerId ?? undefined, details: { hold: s.hold?.reason ?? null } });
    this.note(`${a.operator} rejected: ${a.reason}`);
    if (!s.hold) return;
    if (s.hold.on === 'payment') {
      s.phase = 'rejected';
      s.hold = null;
    } else {
      const dropped = s.waiting.shift();
      s.hold = null;
      this.note(`dropped ${dropped?.kind ?? 'adjustment'} ${dropped?.txnId ?? ''}`);
      await this.applyWaiting(a);
    }
  }

  /** Retries whatever was held, now with the operator's decision in place. */
  private async resume(by: OperatorAction): Promise<void> {
    const s = this.s;
    const hold = s.hold;
    if (!hold) return;
    s.hold = null;
    if (hold.on === 'payment') {
      s.phase = 'pending';
      if (s.payment?.paymentStatus === 'Completed') await this.credit(by);
    } else {
      await this.applyWaiting(by);
    }
  }
}
