/**
 * How the API, the activities and the workflow meet one recurring profile: its type name, input,
 * signals, query and update. The names are recorded in running workflows and histories: never rename them.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { LifecycleEvent } from '../payments/state';
import type { ProfileEvent, ProfileState } from './state';
import type { ProfileActionPath } from './actions';
import type { ActionResult } from './rules';
import type { OperatorAnswer, OperatorRequest } from '../shared/operator-actions';

export const RECURRING_PROFILE = 'recurringProfile';

export interface RecurringProfileInput {
  integrationId: string;
  profileId: string;
  refreshSeconds: number;
  outstandingAlertCycles: number;
  /** A cancelled or expired profile with nothing for a person closes after this long idle. */
  idleCloseSeconds: number;
}

export type RecurringProfileWorkflow = (input: RecurringProfileInput) => Promise<ProfileState>;

export const profileIpnSignal = defineSignal<[ProfileEvent]>('profileIpn');
export const profileAdjustmentSignal = defineSignal<[LifecycleEvent]>('profileAdjustment');
export const profileStateQuery = defineQuery<ProfileState>('state');
/**
 * The admin API's way in: the same input as the signals, answered once applied (PayPal's answer and
 * any ledger posting included) with the profile's state, or refused with the rule that refused it.
 * Histories recorded before the answer carried the state hold the bare result: replays ignore it.
 */
export const profileActionUpdate = defineUpdate<
  OperatorAnswer<ProfileState, ActionResult>,
  [OperatorRequest<ProfileActionPath>]
>('operatorAction');

/** One signal per operator action, for people using the Temporal Web UI. */
export const PROFILE_ACTION_SIGNALS = {
  'bill-outstanding': defineSignal<[unknown]>('billOutstanding'),
  suspend: defineSignal<[unknown]>('suspend'),
  reactivate: defineSignal<[unknown]>('reactivate'),
  cancel: defineSignal<[unknown]>('cancel'),
  refresh: defineSignal<[unknown]>('refresh'),
  assign: defineSignal<[unknown]>('assignCustomer'),
  approve: defineSignal<[unknown]>('approve'),
  acknowledge: defineSignal<[unknown]>('acknowledge'),
} as const satisfies Record<ProfileActionPath, unknown>;
