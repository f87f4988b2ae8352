/**
 * What every entity's pure rules (payment, Mass Pay batch, recurring profile) share: a way to stop
 * and name a missing fact, a deep copy to decide on, and a bounded history.
 */

/** The operators' channel: something a person should know now (the workflow raises it as an alert). */
export type AlertEffect = { type: 'alert'; kind: string; messageId: string | null; detail: string };
/** One audit record: who did what and why (the workflow writes it to the audit log). */
export type AuditEffect = {
  type: 'audit';
  actor: string;
  action: string;
  reason?: string;
  customerId?: string;
  details?: Record<string, unknown>;
};

/** Whether a stored, verified message backs an event (the fact every entity asks before applying one). */
export type Proof = { ok: true } | { ok: false; reason: string };

/** Thrown inside the rules when a fact is missing; the rules' entry point turns it into a `need`. */
export class NeedFact<Need> {
  constructor(readonly need: Need) {}
}

/** Rules decide on a copy: an abandoned or failed decision leaves the caller's state untouched. */
export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Appends to a history, keeping only the newest `limit` entries (workflow state must stay small). */
export function pushBounded<T>(history: T[], entry: T, limit: number): void {
  history.push(entry);
  if (history.length > limit) history.splice(0, history.length - limit);
}

/**
 * What an entity records on a message it did not apply: the same three answers for every entity
 * (outcomes of messages/state.ts MessageStateSchema).
 */
export const notApplied = {
  duplicate: (messageId: string, key: string) => ({
    messageId,
    outcome: 'duplicate' as const,
    detail: `${key} was already applied`,
    addFlags: ['duplicate'],
  }),
  unproven: (messageId: string, reason: string) => ({
    messageId,
    outcome: 'unproven' as const,
    detail: reason,
    addFlags: ['alert'],
  }),
  foreign: (messageId: string, detail: string) => ({
    messageId,
    outcome: 'refused_foreign' as const,
    detail,
    addFlags: ['alert'],
  }),
};
