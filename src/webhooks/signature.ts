import { verify, X509Certificate } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { MoneyMode } from '../shared/ledger';

/** Why a webhook's signature was not accepted: typed, stored on the message, never applied. */
export type SignatureRefusal =
  | { code: 'missing_headers'; missing: string[] }
  | { code: 'unsupported_algorithm'; algorithm: string }
  | { code: 'cert_url_not_allowed'; certUrl: string }
  | { code: 'cert_unavailable'; certUrl: string; error: string }
  | { code: 'cert_expired'; certUrl: string }
  | { code: 'no_webhook_id' }
  | { code: 'bad_signature' };

export type SignatureVerdict = { ok: true } | { ok: false; refusal: SignatureRefusal };

/** The transmission headers PayPal sends with every webhook. */
export const SIGNATURE_HEADERS = [
  'paypal-transmission-id',
  'paypal-transmission-time',
  'paypal-transmission-sig',
  'paypal-cert-url',
  'paypal-auth-algo',
] as const;

/**
 * Certificates are fetched only from PayPal's API hosts over HTTPS, so a forger cannot sign with a key
 * of its own by naming its own certificate. Outside production the sandbox allow-list also takes the
 * configured sandbox REST host (our simulator in tests and the dev stack); live never does.
 */
const LIVE_CERT_HOSTS = ['api.paypal.com', 'api-m.paypal.com'];
const SANDBOX_CERT_HOSTS = ['api.sandbox.paypal.com', 'api-m.sandbox.paypal.com'];

export function certUrlAllowed(
  certUrl: string,
  mode: MoneyMode,
  opts: { production: boolean; sandboxRestUrl: string },
): boolean {
  let url: URL;
  try {
    url = new URL(certUrl);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  const hosts = mode === 'live' ? LIVE_CERT_HOSTS : SANDBOX_CERT_HOSTS;
  if (url.protocol === 'https:' && !url.port && hosts.includes(url.hostname.toLowerCase())) return true;
  if (mode === 'live' || opts.production) return false;
  // The simulator's origin includes its port, so compare origins, not host names.
  return URL.canParse(opts.sandboxRestUrl) && new URL(opts.sandboxRestUrl).origin === url.origin;
}

export interface CertCache {
  get(certUrl: string): Promise<X509Certificate>;
  /** Whether this URL's certificate is fetched and ready (get answers without the network). */
  cached?(certUrl: string): boolean;
}

/** Fetches each allowed certificate once per process (PayPal rotates them rarely; a new URL is a new entry). */
export function createCertCache(fetchText: (url: string) => Promise<string> = defaultFetchText): CertCache {
  const cache = new Map<string, Promise<X509Certificate>>();
  const ready = new Set<string>();
  return {
    get(certUrl) {
      let entry = cache.get(certUrl);
      if (!entry) {
        entry = fetchText(certUrl).then((pem) => new X509Certificate(pem));
        cache.set(certUrl, entry);
        entry.then(
          () => ready.add(certUrl),
          () => cache.delete(certUrl),
        );
      }
      return entry;
    },
    cached: (certUrl) => ready.has(certUrl),
  };
}

async function defaultFetchText(url: string): Promise<string> {
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  return res.text();
}

/**
 * PayPal's offline check: SHA256withRSA over `transmission id|transmission time|webhook id|crc32(raw body)`
 * with the public key of the certificate at PAYPAL-CERT-URL. The raw bytes, never a re-serialisation.
 */
export async function verifyWebhookSignature(args: {
  rawBody: Buffer;
  headers: Record<string, string | undefined>;
  webhookId: string | undefined;
  mode: MoneyMode;
  production: boolean;
  sandboxRestUrl: string;
  certs: CertCache;
  now?: Date;
}): Promise<SignatureVerdict> {
  const h = args.headers;
  const missing = SIGNATURE_HEADERS.filter((name) => !h[name]);
  if (missing.length > 0) return { ok: false, refusal: { code: 'missing_headers', missing } };
  const algorithm = h['paypal-auth-algo']!;
  if (algorithm !== 'SHA256withRSA') return { ok: false, refusal: { code: 'unsupported_algorithm', algorithm } };
  const certUrl = h['paypal-cert-url']!;
  if (!certUrlAllowed(certUrl, args.mode, args)) {
    return { ok: false, refusal: { code: 'cert_url_not_allowed', certUrl } };
  }
  if (!args.webhookId) return { ok: false, refusal: { code: 'no_webhook_id' } };
  let cert: X509Certificate;
  try {
    cert = await args.certs.get(certUrl);
  } catch (err) {
    return { ok: false, refusal: { code: 'cert_unavailable', certUrl, error: String((err as Error).message ?? err) } };
  }
  const now = args.now ?? new Date();
  if (new Date(cert.validTo) < now || new Date(cert.validFrom) > now) {
    return { ok: false, refusal: { code: 'cert_expired', certUrl } };
  }
  const crc = crc32(args.rawBody) >>> 0;
  const message = `${h['paypal-transmission-id']}|${h['paypal-transmission-time']}|${args.webhookId}|${crc}`;
  const signature = Buffer.from(h['paypal-transmission-sig']!, 'base64');
  const good = verify('sha256', Buffer.from(message, 'utf8'), cert.publicKey, signature);
  return good ? { ok: true } : { ok: false, refusal: { code: 'bad_signature' } };
}
