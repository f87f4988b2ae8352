import * as workflows from '../../workflows';
import type { paymentLifecycle } from '../../workflows/payments';
import type { processIpn } from '../../workflows/messages';
import type { masspayBatch } from '../../workflows/masspay';
import type { recurringProfile } from '../../workflows/profiles';
import type { rawBodyRetention } from '../../workflows/retention';
import type { topup } from '../../workflows/topups';
import * as payment from '../../src/payments/contract';
import * as message from '../../src/messages/contract';
import * as masspay from '../../src/masspay/contract';
import * as profile from '../../src/profiles/contract';
import * as retention from '../../src/retention/contract';
import * as topups from '../../src/topups/contract';

/**
 * Starters name a workflow by its contract's type name and type (no import of the workflow module,
 * so no import cycle). Checked by tsc (npm test): each workflow is what its contract says it is.
 */
type Is<W, C> = W extends C ? true : false;
const conforms: [
  Is<typeof paymentLifecycle, payment.PaymentLifecycleWorkflow>,
  Is<typeof processIpn, message.ProcessIpnWorkflow>,
  Is<typeof masspayBatch, masspay.MasspayBatchWorkflow>,
  Is<typeof recurringProfile, profile.RecurringProfileWorkflow>,
  Is<typeof rawBodyRetention, retention.RawBodyRetentionWorkflow>,
  Is<typeof topup, topups.TopupWorkflow>,
] = [true, true, true, true, true, true];

/** Every signal, query and update a contract module exports, by export name → the name on the wire. */
function wireNames(contract: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(contract)) {
    const def = value as { type?: string; name?: string };
    if (def && typeof def === 'object' && ['signal', 'query', 'update'].includes(def.type ?? ''))
      out[key] = `${def.type}:${def.name}`;
  }
  return out;
}

describe('workflow contracts', () => {
  it('name the workflow types the worker registers', () => {
    expect(conforms.every(Boolean)).toBe(true);
    const types = [
      payment.PAYMENT_LIFECYCLE,
      message.PROCESS_IPN,
      masspay.MASSPAY_BATCH,
      profile.RECURRING_PROFILE,
      retention.RAW_BODY_RETENTION,
      topups.TOPUP_WORKFLOW,
    ];
    // The names running workflows, Schedules and recorded histories carry.
    expect(types).toEqual([
      'paymentLifecycle',
      'processIpn',
      'masspayBatch',
      'recurringProfile',
      'rawBodyRetention',
      'topup',
    ]);
    expect(Object.keys(workflows).sort()).toEqual([...types].sort());
    for (const t of types) expect(typeof (workflows as Record<string, unknown>)[t]).toBe('function');
  });

  it('keep the signal, query and update names of running workflows and recorded histories', () => {
    expect(wireNames(payment)).toEqual({
      ipnMessageSignal: 'signal:ipnMessage',
      ipnEventSignal: 'signal:ipnEvent',
      assignCustomerSignal: 'signal:assignCustomer',
      approveSignal: 'signal:approve',
      rejectSignal: 'signal:reject',
      acknowledgeSignal: 'signal:acknowledge',
      paymentStateQuery: 'query:state',
      paymentActionUpdate: 'update:operatorAction',
    });
    expect(wireNames(topups)).toEqual({
      paypalNoticeSignal: 'signal:paypalNotice',
      buyerReturnedUpdate: 'update:buyerReturned',
      buyerCancelledUpdate: 'update:buyerCancelled',
      topupStateQuery: 'query:state',
    });
    expect(wireNames(message)).toEqual({
      messageStateQuery: 'query:state',
      retryVerificationSignal: 'signal:retryVerification',
      rejectMessageSignal: 'signal:rejectMessage',
    });
    expect(wireNames(masspay)).toEqual({
      masspayIpnSignal: 'signal:masspayIpn',
      approvePayoutSignal: 'signal:approvePayout',
      submittedPayoutSignal: 'signal:payoutSubmitted',
      cancelPayoutSignal: 'signal:cancelPayout',
      sendPayoutSignal: 'signal:sendPayout',
      resolvePayoutItemSignal: 'signal:resolvePayoutItem',
      stopWaitingPayoutSignal: 'signal:stopWaitingPayout',
      reconcilePayoutSignal: 'signal:reconcilePayout',
      clearPayoutContradictionSignal: 'signal:clearPayoutContradiction',
      payoutsWebhookSignal: 'signal:payoutsWebhook',
      cancelUnclaimedPayoutSignal: 'signal:cancelUnclaimedPayoutItem',
      payoutStateQuery: 'query:state',
      masspayActionUpdate: 'update:operatorAction',
    });
    expect(wireNames(profile)).toEqual({
      profileIpnSignal: 'signal:profileIpn',
      profileAdjustmentSignal: 'signal:profileAdjustment',
      profileStateQuery: 'query:state',
      profileActionUpdate: 'update:operatorAction',
    });
    expect(wireNames(profile.PROFILE_ACTION_SIGNALS)).toEqual({
      'bill-outstanding': 'signal:billOutstanding',
      suspend: 'signal:suspend',
      reactivate: 'signal:reactivate',
      cancel: 'signal:cancel',
      refresh: 'signal:refresh',
      assign: 'signal:assignCustomer',
      approve: 'signal:approve',
      acknowledge: 'signal:acknowledge',
    });
  });
});
