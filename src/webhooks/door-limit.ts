import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * What the webhook door may refuse with 429, and what it never may.
 *
 * A webhook it can store is stored and answered 200, always: a 429 would only make PayPal send it
 * again later (up to 25 times over 3 days), delaying payees' money, and storing first is the rule for
 * every notification (the raw bytes are the evidence). So nothing for a known integration with a body
 * PayPal could have sent is ever limited: a flood of those costs one insert each, bounded by the
 * body cap, and its signatures fail on their own.
 *
 * What is limited is what is never stored: POSTs to an integration id we do not have (each costs a
 * database read, unknown ids are not cached), bodies over the size cap and bodies that are not JSON.
 * Those are counted per client address (the same key as the IPN door: behind the proxy, the address
 * it appended) and, once over the allowance in a window, answered 429 without reading or looking up
 * anything (WEBHOOK_REFUSED_POINTS per WEBHOOK_REFUSED_WINDOW_SECONDS). PayPal never sends these,
 * so its own deliveries, from its own addresses, are never slowed by it.
 */
export class WebhookDoorLimit {
  private readonly limiter: RateLimiterMemory;

  constructor(private readonly opts: { points: number; windowSeconds: number }) {
    this.limiter = new RateLimiterMemory({ points: opts.points, duration: opts.windowSeconds, keyPrefix: 'webhook' });
  }

  /** Whether this client is over its allowance of refused POSTs: seconds to wait (Retry-After), or null. */
  async blocked(client: string): Promise<number | null> {
    const res = await this.limiter.get(client);
    if (!res || res.consumedPoints < this.opts.points) return null;
    return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  }

  /** Counts one POST the door refused without storing it. */
  async refused(client: string): Promise<void> {
    try {
      await this.limiter.consume(client, 1);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
    }
  }
}
