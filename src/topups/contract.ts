/**
 * How the API, the webhook door, the activities and the workflow meet one top-up: its type name,
 * input, signal, updates and query. The names are recorded in histories: never rename them.
 * Starters name the workflow by this type (no import of the workflow module, hence no import cycle).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { TopupState } from './state';

export const TOPUP_WORKFLOW = 'topup';

export interface TopupWorkflowInput {
  topupId: string;
  /** How often PayPal is asked while the buyer has not come back, or a capture is pending. */
  pollSeconds: number;
}
export type TopupWorkflow = (input: TopupWorkflowInput) => Promise<TopupState>;

/** A top-up id: ours, `tu_` and 20 letters/digits (random, or derived from a hosted page's attempt). */
export const TopupIdSchema = z.string().regex(/^tu_[a-z0-9]{20}$/, 'a top-up id');

export const PayPalNoticeSchema = z.object({ source: z.enum(['webhook', 'ipn']) });
export type PayPalNotice = z.infer<typeof PayPalNoticeSchema>;
/** The buyer is back (or cancelled): nothing the buyer sends is trusted, PayPal is asked. */
export const BuyerStepSchema = z.object({}).strict();

export const paypalNoticeSignal = defineSignal<[PayPalNotice]>('paypalNotice');
/** Answered once the return is applied: the capture asked for and, when it completed, credited. */
export const buyerReturnedUpdate = defineUpdate<TopupState, [Record<string, never>]>('buyerReturned');
export const buyerCancelledUpdate = defineUpdate<TopupState, [Record<string, never>]>('buyerCancelled');
export const topupStateQuery = defineQuery<TopupState>('state');
