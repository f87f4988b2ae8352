/**
 * What a person must look at on an entity (its `attention`: a payment, a recurring profile), and
 * how each matter may be closed. Shared by every feature; each supplies its own table of kinds.
 * A matter is `<kind>` or `<kind>:<reference>` (a message, txn or case id). Pure (bundled into workflows).
 *
 * - `notice`: informs only (the state shows it too); a blanket `acknowledge` closes it.
 * - `decision`: a contradiction or something not applied: closed only by an `acknowledge` naming
 *   it, so clearing the notices never hides one.
 * - `assign`: closed by assigning a customer (money waits on it).
 * - `reconcile`: closed only by evidence of what PayPal did, never by a person's word alone.
 */
export type MatterClosing = 'notice' | 'decision' | 'assign' | 'reconcile';
export type ClosingTable = Readonly<Record<string, MatterClosing>>;

/**
 * A matter's name, as listed in `attention` and typed back by an operator to acknowledge it: the
 * name is the handle, so it stays text; code builds it here and reads it with `parseMatter`.
 */
export function matter<K extends string>(kind: K, ref?: string): string {
  return ref === undefined ? kind : `${kind}:${ref}`;
}

/** A matter's name read back: its kind, and the message, txn or case id it is about (null if none). */
export function parseMatter(name: string): { kind: string; ref: string | null } {
  const at = name.indexOf(':');
  return at < 0 ? { kind: name, ref: null } : { kind: name.slice(0, at), ref: name.slice(at + 1) };
}

/** How a matter is closed; an unknown kind (from an older version) needs its own decision. */
export function closingOf(table: ClosingTable, m: string): MatterClosing {
  const { kind } = parseMatter(m);
  return Object.hasOwn(table, kind) ? table[kind]! : 'decision';
}

/**
 * Why an acknowledge is refused. `closed_otherwise`: the named matter exists but closes by another
 * way (`closing`); the feature names its own rule for that (assign a customer, wait for PayPal).
 */
export type AcknowledgeRefusal =
  | { rule: 'nothing_to_acknowledge' | 'matter_needs_own_decision' | 'no_such_matter'; detail: string }
  | { rule: 'closed_otherwise'; closing: 'assign' | 'reconcile'; detail: string };

export type AcknowledgeOutcome = { ok: true; closed: string[]; open: string[] } | ({ ok: false } & AcknowledgeRefusal);

/**
 * What an acknowledge closes: without `named`, every notice (refused when there is none: what
 * waits then needs a decision each); with `named`, exactly that matter, if it closes by a decision
 * or is a notice. `who` names the entity in the refusal's detail.
 */
export function acknowledgeMatters(
  table: ClosingTable,
  attention: readonly string[],
  named: string | undefined,
  who: string,
): AcknowledgeOutcome {
  if (attention.length === 0)
    return { ok: false, rule: 'nothing_to_acknowledge', detail: `nothing on ${who} waits for acknowledgement` };
  if (named === undefined) {
    const closed = attention.filter((m) => closingOf(table, m) === 'notice');
    if (closed.length > 0) return { ok: true, closed, open: attention.filter((m) => !closed.includes(m)) };
    return {
      ok: false,
      rule: 'matter_needs_own_decision',
      detail: `what waits on ${who} (${attention.join(', ')}) is not a notice: acknowledge one by name ("matter")`,
    };
  }
  if (!attention.includes(named)) return { ok: false, rule: 'no_such_matter', detail: `${who} has no matter ${named}` };
  const closing = closingOf(table, named);
  if (closing === 'assign' || closing === 'reconcile')
    return { ok: false, rule: 'closed_otherwise', closing, detail: `${named} is closed by ${closing}` };
  return { ok: true, closed: [named], open: attention.filter((m) => m !== named) };
}
