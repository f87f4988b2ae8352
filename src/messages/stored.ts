import { Types } from 'mongoose';
import type { IpnMessageDoc, Models } from '../shared/db/models';

/**
 * A stored message by its id, as `IpnMessage.findById(id).lean()` reads it, straight through the driver:
 * every payment loads its message, and mongoose's query machinery (building a Query, casting the filter,
 * middleware) cost about as much node CPU as the driver's own work. A lean read returns the driver's
 * document unchanged, so nothing else differs. An id that is no ObjectId names no message.
 */
export async function storedMessage(models: Models, messageId: string): Promise<IpnMessageDoc | null> {
  if (!Types.ObjectId.isValid(messageId)) return null;
  return models.IpnMessage.collection.findOne<IpnMessageDoc>({ _id: new Types.ObjectId(messageId) });
}
