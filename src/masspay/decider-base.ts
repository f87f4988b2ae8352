import type { PayoutBatchState, PayoutContradiction } from './state';
import { NeedFact } from '../shared/rules-kit';
import {
  type BatchContext,
  type BatchEffect,
  type BatchFactNeed,
  type BatchFacts,
  CONTRADICTIONS_LIMIT,
} from './batch-model';
import type { BatchResult } from './batch-model';
import { pushHistory } from './batch-rules';

export abstract class DeciderBase {
  readonly effects: BatchEffect[] = [];
  /** An operator action's outcome; set by refuse() or once the action is applied. */
  result: BatchResult = { ok: false, status: 409, rule: 'internal_error', detail: 'no decision' };

  protected readonly legacy: boolean;

  constructor(
    readonly s: PayoutBatchState,
    protected readonly facts: BatchFacts,
    protected readonly ctx: BatchContext,
  ) {
    this.legacy = ctx.legacy === true;
  }

  protected need<T>(have: T | undefined, need: BatchFactNeed): T {
    if (have === undefined) throw new NeedFact<BatchFactNeed>(need);
    return have;
  }

  /** A contradiction raised once (never again once cleared): blocking, alerted and audited. */
  protected contradict(c: PayoutContradiction): void {
    const s = this.s;
    if (s.clearedContradictions.includes(c.id) || s.contradictions.some((x) => x.id === c.id)) return;
    if (s.contradictions.length >= CONTRADICTIONS_LIMIT) {
      this.attend('contradictions_overflow');
      return;
    }
    s.contradictions.push(c);
    const about = 'uniqueId' in c ? ` item ${c.uniqueId}` : '';
    this.note(`contradiction ${c.id}${about}: held until a person clears it`, c.messageId);
    this.alert('payout_contradiction', c.messageId, `${s.id}: ${c.id}`);
    this.audit({
      actor: 'paypal',
      action: 'payout_contradiction_raised',
      details: { batchId: s.id, contradiction: c },
    });
  }

  protected contradictBatch(messageId: string, paypal: string): void {
    const ours = this.s.state;
    const id = `batch_contradicts_final:${ours}:${paypal}`;
    this.contradict({ code: 'batch_contradicts_final', id, messageId, at: this.ctx.now, ours, paypal });
  }

  protected attend(matter: string): void {
    if (!this.s.attention.includes(matter)) this.s.attention.push(matter);
  }

  protected unattend(matter: string): void {
    this.s.attention = this.s.attention.filter((m) => m !== matter);
  }

  protected note(what: string, messageId: string | null = null): void {
    pushHistory(this.s, { at: this.ctx.now, what, messageId });
  }

  protected alert(kind: string, messageId: string | null, detail: string): void {
    this.effects.push({ type: 'alert', kind, messageId, detail });
  }

  protected audit(a: Omit<Extract<BatchEffect, { type: 'audit' }>, 'type'>): void {
    this.effects.push({ type: 'audit', ...a });
  }
}
