/**
 * How the API, the activities and the workflows meet one delivery's processIpn workflow, and the
 * decisions about a parked message (which a payment's lifecycle takes too). The names are recorded
 * in running workflows and histories: never rename them.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { z } from 'zod';
import { operatorActionSchema } from '../shared/operator-actions';
import type { MessageOutcome } from './state';

export const PROCESS_IPN = 'processIpn';

export interface ProcessIpnInput {
  messageId: string;
  verifyGiveUpSeconds: number;
  paymentIdleCloseSeconds: number;
}

export type ProcessIpnWorkflow = (input: ProcessIpnInput) => Promise<MessageOutcome>;

export const messageStateQuery = defineQuery<{ stage: string; flags: string[] }>('state');

/**
 * A decision about a parked message. `messageId` names which one, where several may be parked (a
 * payment verifies its messages side by side); without it, the one parked longest takes it.
 */
export const ParkingActionSchema = operatorActionSchema(() => ({
  messageId: z.string().min(1).max(64).optional(),
}));
export type ParkingAction = z.infer<typeof ParkingActionSchema>;

/** Operator: try the PayPal postback again for a parked message. */
export const retryVerificationSignal = defineSignal<[ParkingAction]>('retryVerification');
/** Operator: give up on a parked message. */
export const rejectMessageSignal = defineSignal<[ParkingAction]>('rejectMessage');
