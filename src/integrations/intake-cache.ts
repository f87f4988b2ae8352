import type { Models } from '../shared/db/models';
import type { MoneyMode } from '../shared/ledger';

type IntakeView = { _id: string; ipnEnabled: boolean; mode: MoneyMode };

/**
 * What the IPN route needs of an integration, kept for a couple of seconds: PayPal's door should
 * cost one insert, not a read and an insert. The admin API forgets an entry when it saves one, so
 * a change made through this process applies at once; other API processes see it within `ttlMs`.
 * Unknown ids are not remembered: an integration created a moment ago is found at once.
 */
export class IntakeIntegrations {
  private readonly entries = new Map<string, { view: IntakeView; until: number }>();

  constructor(
    private readonly models: Models,
    private readonly ttlMs = 2_000,
  ) {}

  async get(id: string): Promise<IntakeView | null> {
    const hit = this.entries.get(id);
    if (hit && hit.until > Date.now()) return hit.view;
    const doc = await this.models.Integration.findById(id, { ipnEnabled: 1, mode: 1 }).lean<IntakeView>();
    if (!doc) {
      this.entries.delete(id);
      return null;
    }
    // Bounded: far more integrations than this would be a misuse, not a working set.
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(id, { view: doc, until: Date.now() + this.ttlMs });
    return doc;
  }

  forget(id: string): void {
    this.entries.delete(id);
  }
}
