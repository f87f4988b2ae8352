import type { Models } from '../shared/db/models';
import type { LifecycleEvent } from '../payments/state';
import type { MessageOutcomeRecord } from './state';

/** An outcome as a workflow records it, with the event it proved when it routed one (see proveEvent). */
export type OutcomeWrite = MessageOutcomeRecord & { routedEvent?: LifecycleEvent; receivedEvents?: LifecycleEvent[] };

/** How a stored message ended, by _id: its state, why, its flags, and the event(s) its workflow proved. */
export async function recordOutcome(models: Models, record: OutcomeWrite): Promise<void> {
  const { messageId, outcome, detail, flags, addFlags, routedEvent, receivedEvents } = record;
  const set = {
    state: outcome,
    outcome: detail,
    outcomeAt: new Date(),
    ...(flags ? { flags } : {}),
    ...(routedEvent ? { routedEvent } : {}),
    ...(receivedEvents ? { receivedEvents } : {}),
  };
  await models.IpnMessage.updateOne(
    { _id: messageId },
    { $set: set, ...(addFlags ? { $addToSet: { flags: { $each: addFlags } } } : {}) },
  );
}
