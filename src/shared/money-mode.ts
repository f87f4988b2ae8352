import { z } from 'zod';

/**
 * Sandbox money (PayPal test messages) lives in accounts of its own, never summed with live money.
 * Declared once: the ledger, the stored documents, integrations and the rules all use this.
 * Pure (bundled into workflows).
 */
export const MoneyModeSchema = z.enum(['live', 'sandbox']);
export type MoneyMode = z.infer<typeof MoneyModeSchema>;

/** The mode of the money a PayPal message moves: sandbox for its test messages (`test_ipn`), else live. */
export function moneyModeOf(sandbox: boolean): MoneyMode {
  return sandbox ? 'sandbox' : 'live';
}
