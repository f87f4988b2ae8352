import type { MoneyMode } from '../ledger';

/** PayPal's REST app credentials for one integration. Never logged, never put in a workflow payload. */
export interface RestCredentials {
  clientId: string;
  secret: string;
  /** The app's webhook id (`WH-…`): part of every webhook signature; absent when the app has no webhook. */
  webhookId?: string;
}

/** Live REST calls always go to PayPal's own host, which no setting can change. */
export const LIVE_REST_URL = 'https://api-m.paypal.com';

export function restUrl(mode: MoneyMode, sandboxUrl: string): string {
  return mode === 'live' ? LIVE_REST_URL : sandboxUrl.replace(/\/+$/, '');
}

/**
 * Referenced, not stored: the integration names a prefix (`payoutsRestEnv`), and the secrets are
 * `<prefix>_CLIENT_ID`, `<prefix>_CLIENT_SECRET` (and `<prefix>_WEBHOOK_ID`) in the environment.
 */
export function restCredentialNames(prefix: string): { clientId: string; secret: string; webhookId: string } {
  return { clientId: `${prefix}_CLIENT_ID`, secret: `${prefix}_CLIENT_SECRET`, webhookId: `${prefix}_WEBHOOK_ID` };
}

export function restCredentialsFromEnv(prefix: string, env: NodeJS.ProcessEnv): RestCredentials | null {
  const names = restCredentialNames(prefix);
  const clientId = env[names.clientId];
  const secret = env[names.secret];
  if (!clientId || !secret) return null;
  return { clientId, secret, webhookId: env[names.webhookId] || undefined };
}

/** PayPal's answer to a REST call that was not 2xx: its status and error name, with details for the caller. */
export class PayPalRestError extends Error {
  constructor(
    readonly status: number,
    readonly errorName: string,
    readonly details: { field?: string; issue?: string }[],
    readonly debugId: string | undefined,
    context: string,
    /** PayPal's links (a duplicate batch answer links the batch it already has). */
    readonly links: { href: string; rel?: string }[] = [],
  ) {
    super(`${context}: PayPal answered ${status} ${errorName}${debugId ? ` (debug_id ${debugId})` : ''}`);
    this.name = 'PayPalRestError';
  }

  /** 5xx and 429 are PayPal's own trouble: the same request may be sent again. */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429;
  }
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

/** Renew this long before PayPal says a token expires, so a call never starts with a token about to die. */
const TOKEN_MARGIN_MS = 5 * 60_000;
const CALL_TIMEOUT_MS = 30_000;

/**
 * One PayPal REST app: an OAuth2 client-credentials token, cached until shortly before it expires and
 * fetched once for concurrent callers, renewed once when PayPal answers 401 anyway.
 */
export class PayPalRestClient {
  private token: Promise<CachedToken> | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly creds: RestCredentials,
    private readonly now: () => number = Date.now,
  ) {}

  async request<T>(
    method: 'GET' | 'POST',
    path: string,
    opts: { body?: unknown; requestId?: string; context: string },
  ): Promise<{ status: number; body: T }> {
    const first = await this.send(method, path, opts, await this.currentToken());
    if (first.status !== 401) return this.answer<T>(first, opts.context);
    this.token = undefined;
    return this.answer<T>(await this.send(method, path, opts, await this.currentToken()), opts.context);
  }

  private async send(
    method: string,
    path: string,
    opts: { body?: unknown; requestId?: string },
    token: CachedToken,
  ): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${token.value}`, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.requestId) headers['paypal-request-id'] = opts.requestId;
    return fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  }

  private async answer<T>(res: Response, context: string): Promise<{ status: number; body: T }> {
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      throw new PayPalRestError(res.status, 'NOT_JSON', [], undefined, context);
    }
    if (res.ok) return { status: res.status, body: body as T };
    const err = (body ?? {}) as {
      name?: unknown;
      error?: unknown;
      details?: unknown;
      debug_id?: unknown;
      links?: unknown;
    };
    const details = Array.isArray(err.details) ? (err.details as { field?: string; issue?: string }[]) : [];
    const links = Array.isArray(err.links) ? (err.links as { href: string; rel?: string }[]) : [];
    const name = typeof err.name === 'string' ? err.name : typeof err.error === 'string' ? err.error : 'UNKNOWN';
    const debugId = typeof err.debug_id === 'string' ? err.debug_id : undefined;
    throw new PayPalRestError(res.status, name, details, debugId, context, links);
  }

  private currentToken(): Promise<CachedToken> {
    const cached = this.token;
    if (cached) {
      return cached.then((t) => (t.expiresAt > this.now() ? t : this.renew()));
    }
    return this.renew();
  }

  private renew(): Promise<CachedToken> {
    const pending = this.fetchToken();
    this.token = pending;
    // A failed fetch must not stay cached: the next call tries again.
    pending.catch(() => {
      if (this.token === pending) this.token = undefined;
    });
    return pending;
  }

  private async fetchToken(): Promise<CachedToken> {
    const started = this.now();
    const basic = Buffer.from(`${this.creds.clientId}:${this.creds.secret}`, 'utf8').toString('base64');
    const res = await fetch(`${this.baseUrl}/v1/oauth2/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    const { body } = await this.answer<{ access_token?: unknown; expires_in?: unknown }>(res, 'OAuth2 token');
    if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number') {
      throw new PayPalRestError(res.status, 'BAD_TOKEN_ANSWER', [], undefined, 'OAuth2 token');
    }
    const lifetimeMs = Math.max(0, body.expires_in * 1000 - TOKEN_MARGIN_MS);
    return { value: body.access_token, expiresAt: started + lifetimeMs };
  }
}

/** One client per app and host per process: the token cache is shared by every call. */
const clients = new Map<string, PayPalRestClient>();

export function restClientFor(baseUrl: string, creds: RestCredentials): PayPalRestClient {
  const key = `${baseUrl}\u0000${creds.clientId}\u0000${creds.secret}`;
  let client = clients.get(key);
  if (!client) {
    client = new PayPalRestClient(baseUrl, creds);
    clients.set(key, client);
  }
  return client;
}
