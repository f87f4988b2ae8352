import type { IntegrationDoc, Models } from '../shared/db/models';
import { perHandle } from '../shared/db/per-handle';

type Entry = { doc: IntegrationDoc; until: number };
/** Per database handle: every reader in this process shares one view, so a save forgets it for all. */
const entriesOf = perHandle((): Map<string, Entry> => new Map());

/**
 * Integrations as this process read them, kept for a couple of seconds: PayPal's door should cost one
 * insert, not a read and an insert, and a payment's worker should not read its integration again for
 * every message. The admin API forgets an entry when it saves one, so a change made through this
 * process applies at once; other processes (the API's, the worker's) see it within `ttlMs`. Unknown
 * ids are not remembered: an integration created a moment ago is found at once. The ledger's check
 * that a sandbox integration moves no live money reads the integration itself (see Ledger).
 */
export class IntegrationCache {
  private readonly entries: Map<string, Entry>;

  constructor(
    private readonly models: Models,
    private readonly ttlMs = 2_000,
  ) {
    this.entries = entriesOf(models);
  }

  /** The stored document, as `findById(id).lean()` reads it (no defaults filled in). */
  async get(id: string): Promise<IntegrationDoc | null> {
    const hit = this.entries.get(id);
    if (hit && hit.until > Date.now()) return hit.doc;
    const doc = await this.models.Integration.findById(id).lean<IntegrationDoc>();
    if (!doc) {
      this.entries.delete(id);
      return null;
    }
    // Bounded: far more integrations than this would be a misuse, not a working set.
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(id, { doc, until: Date.now() + this.ttlMs });
    return doc;
  }

  forget(id: string): void {
    this.entries.delete(id);
  }
}
