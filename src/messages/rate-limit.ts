import net from 'node:net';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/** A request costs one point, plus one per this many bytes it declares: a megabyte weighs 17 small IPNs. */
const BYTES_PER_POINT = 64 * 1024;

/**
 * PayPal's door, per client: a fixed window of points per address (rate-limiter-flexible's memory
 * limiter: counters that expire on their own, nothing to sweep). Checked before anything is read or
 * stored, and refused with 429 + Retry-After: PayPal resends whatever was not answered 200 (for up to
 * four days), so a throttled message is delayed, never lost, and a stored one is never dropped or
 * deferred. Storing first and dispatching later would not protect the store: a flood would still
 * write every byte. Counted per API process; each process takes its share of the traffic.
 */
export class IpnRateLimit {
  private readonly limiter: RateLimiterMemory;

  constructor(private readonly opts: { points: number; windowSeconds: number; maxBodyBytes: number }) {
    this.limiter = new RateLimiterMemory({ points: opts.points, duration: opts.windowSeconds, keyPrefix: 'ipn' });
  }

  /** null when the request may go on, else how many seconds to wait (for Retry-After). */
  async take(client: string, declaredBytes: number | null): Promise<number | null> {
    try {
      await this.limiter.consume(client, this.cost(declaredBytes));
      return null;
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      return Math.max(1, Math.ceil(err.msBeforeNext / 1000));
    }
  }

  /** Undeclared (chunked) bodies cost as much as the largest; one over the limit is refused unread (413). */
  private cost(declaredBytes: number | null): number {
    const { maxBodyBytes, points } = this.opts;
    if (declaredBytes !== null && declaredBytes > maxBodyBytes) return 1;
    return Math.min(points, 1 + Math.floor((declaredBytes ?? maxBodyBytes) / BYTES_PER_POINT));
  }
}

/**
 * The client a request is counted against. Behind the TLS proxy the deployment puts in front (see
 * docker-compose.yml; Koa runs with `proxy: true`), that is the last X-Forwarded-For entry: the one
 * the proxy itself appended, where the first ones are whatever the client wrote. IPv6 clients count
 * per /64, the block one subscriber gets; IPv4-mapped addresses as IPv4.
 */
export function clientKey(forwardedFor: readonly string[], socketAddress: string | undefined): string {
  const address = (forwardedFor.at(-1) ?? socketAddress ?? 'unknown').trim().replace(/^::ffff:(?=\d+\.)/i, '');
  const unscoped = address.replace(/%.*$/, '');
  return net.isIPv6(unscoped) ? ipv6Prefix64(unscoped) : address;
}

function ipv6Prefix64(address: string): string {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
