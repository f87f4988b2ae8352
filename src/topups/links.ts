import crypto from 'node:crypto';
import { z } from 'zod';
import { requireOperatorSecretsKey, secretKeyBytes, type Config } from '../shared/config';

/**
 * Hosted top-up page links: `<payload>.<mac>`, the payload base64url JSON naming the integration, the
 * customer and when the link stops working, the MAC an HMAC-SHA256 over it. Nothing else about the
 * customer is in the URL. Forms on the page carry a CSRF token bound to the link and the attempt (an
 * HMAC too): another site can neither read it nor make one.
 */

const LinkSchema = z.object({
  v: z.literal(1),
  i: z.string(),
  c: z.string(),
  /** Expiry, epoch seconds. */
  e: z.number().int(),
});
export type TopupLink = { integrationId: string; customerId: string; expiresAt: Date };
export type LinkRefusal = 'malformed' | 'bad_signature' | 'expired';

const b64 = (b: Buffer) => b.toString('base64url');

export class TopupLinks {
  private readonly key: Buffer;

  constructor(config: Pick<Config, 'TOPUP_LINK_KEY' | 'OPERATOR_SECRETS_KEY'>) {
    const own = config.TOPUP_LINK_KEY ? secretKeyBytes(config.TOPUP_LINK_KEY) : null;
    // Its own key, or one derived for this use alone: a link MAC is never an operator secret's MAC.
    this.key =
      own ??
      Buffer.from(
        crypto.hkdfSync(
          'sha256',
          requireOperatorSecretsKey(config as Config),
          Buffer.alloc(0),
          'ipnflow topup links',
          32,
        ),
      );
  }

  private mac(label: string, text: string): string {
    return b64(crypto.createHmac('sha256', this.key).update(`${label}\u0000${text}`).digest());
  }

  sign(link: TopupLink): string {
    const payload = b64(
      Buffer.from(
        JSON.stringify({
          v: 1,
          i: link.integrationId,
          c: link.customerId,
          e: Math.floor(link.expiresAt.getTime() / 1000),
        }),
      ),
    );
    return `${payload}.${this.mac('link', payload)}`;
  }

  verify(token: string, nowMs = Date.now()): { ok: true; link: TopupLink } | { ok: false; why: LinkRefusal } {
    const m = /^([A-Za-z0-9_-]{10,600})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) return { ok: false, why: 'malformed' };
    if (!safeEqual(m[2]!, this.mac('link', m[1]!))) return { ok: false, why: 'bad_signature' };
    let parsed: z.infer<typeof LinkSchema>;
    try {
      parsed = LinkSchema.parse(JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8')));
    } catch {
      return { ok: false, why: 'malformed' };
    }
    if (parsed.e * 1000 <= nowMs) return { ok: false, why: 'expired' };
    return { ok: true, link: { integrationId: parsed.i, customerId: parsed.c, expiresAt: new Date(parsed.e * 1000) } };
  }

  /** The form's CSRF token: bound to this link and this attempt. */
  csrf(token: string, attempt: string): string {
    return this.mac('csrf', `${token}|${attempt}`);
  }

  checkCsrf(token: string, attempt: string, given: string): boolean {
    return safeEqual(given, this.csrf(token, attempt));
  }

  /**
   * The top-up one attempt of one link stands for: a double click, or the form sent again, names the
   * same top-up (one order at PayPal, one capture at most).
   */
  topupIdOf(token: string, attempt: string): string {
    const digest = crypto.createHmac('sha256', this.key).update(`topup\u0000${token}|${attempt}`).digest();
    return `tu_${BigInt(`0x${digest.subarray(0, 16).toString('hex')}`)
      .toString(36)
      .padStart(20, '0')
      .slice(-20)}`;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/** A random top-up id (API top-ups): `tu_` and 20 base-36 characters. */
export function newTopupId(): string {
  return `tu_${BigInt(`0x${crypto.randomBytes(16).toString('hex')}`)
    .toString(36)
    .padStart(20, '0')
    .slice(-20)}`;
}
