import { z } from 'zod';

/**
 * Who changed a configuration, for its audit entry: the body's `operator`, until the operators
 * issue replaces it with an authenticated identity. Optional for now (every existing client PUTs
 * without it); an entry without one says only that someone holding the admin token made the change.
 */
export const ConfigActorSchema = z.object({ operator: z.string().trim().min(1).max(100).optional() });
export const UNNAMED_ACTOR = 'unnamed (admin token)';

export interface ConfigChange {
  /** Every field whose value changed, those shown below and those shown only by name. */
  changed: string[];
  /** The changed fields' values before (absent on creation) and after, except `hidden` ones. */
  before?: Record<string, unknown>;
  after: Record<string, unknown>;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * What an edit changed, or null when nothing did. Fields in `hidden` (a person's name) are named
 * as changed, never shown: an audit entry keeps what it needs to trace a change, no more. Never
 * pass a secret's value in `after`: integrations hold only references to their credentials.
 */
export function configChange(
  before: Record<string, unknown> | null,
  after: Record<string, unknown>,
  hidden: readonly string[] = [],
): ConfigChange | null {
  const fields = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after)])].filter(
    (f) => f !== '_id' && (before === null || !same(before[f], after[f])),
  );
  if (before !== null && fields.length === 0) return null;
  const shown = fields.filter((f) => !hidden.includes(f));
  const pick = (doc: Record<string, unknown>) => Object.fromEntries(shown.map((f) => [f, doc[f] ?? null]));
  return { changed: fields, ...(before ? { before: pick(before) } : {}), after: pick(after) };
}

/** The audit actions of configuration changes. */
export const CONFIG_AUDIT_ACTIONS = {
  integrationCreated: 'integration_created',
  integrationUpdated: 'integration_updated',
  customerCreated: 'customer_created',
  customerUpdated: 'customer_updated',
} as const;
