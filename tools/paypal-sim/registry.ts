import { createHash } from 'node:crypto';

/**
 * Bytes the simulator has sent (or was told about). Keyed by a digest of the exact bytes so that
 * verification is a byte-for-byte comparison: any re-encoding changes the key.
 */
export class MessageRegistry {
  private readonly digests = new Set<string>();

  register(raw: Buffer): void {
    if (raw.length === 0) {
      throw new RangeError('cannot register an empty IPN body: PayPal never sends one');
    }
    this.digests.add(digest(raw));
  }

  has(raw: Buffer): boolean {
    return raw.length > 0 && this.digests.has(digest(raw));
  }

  get size(): number {
    return this.digests.size;
  }
}

function digest(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex');
}
