import { Types } from 'mongoose';
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
  // Through the driver, as the message is read (stored.ts): every field here is this function's own.
  // An id that is no ObjectId throws, as mongoose's cast did.
  await models.IpnMessage.collection.updateOne(
    { _id: new Types.ObjectId(messageId) },
    { $set: set, ...(addFlags ? { $addToSet: { flags: { $each: addFlags } } } : {}) },
  );
}
