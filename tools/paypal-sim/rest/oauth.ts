import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../http-util';

/** A REST app as PayPal's developer dashboard creates one: client id + secret, and its webhook. */
export interface SimRestApp {
  clientId: string;
  secret: string;
  /** Where this app's webhook events are posted; none: events are only visible by polling. */
  webhookUrl?: string;
  /** The webhook's id (PayPal's `WH-…`), part of every signature. */
  webhookId?: string;
  /** The business account's email and merchant id (the payee of its checkouts). */
  merchantEmail?: string;
  merchantId?: string;
  /** Where the account's IPNs go (checkout captures); none: no IPN is sent. */
  ipnUrl?: string;
}

interface Token {
  clientId: string;
  expiresAt: number;
}

/** PayPal's OAuth2 client-credentials endpoint and the bearer check every REST call makes. */
export class SimOAuth {
  private readonly apps = new Map<string, SimRestApp>();
  private readonly tokens = new Map<string, Token>();
  /** Seconds a new token lives; PayPal issues ~9 h, tests shorten it to see a refresh. */
  tokenTtlSeconds = 32_400;
  /** How many tokens were issued, per client id (tests check the cache works). */
  readonly issued = new Map<string, number>();

  addApp(app: SimRestApp): void {
    this.apps.set(app.clientId, { ...app });
  }

  app(clientId: string): SimRestApp | undefined {
    return this.apps.get(clientId);
  }

  /** Every token stops working at once, as when PayPal revokes them: the next call gets 401. */
  expireAllTokens(): void {
    this.tokens.clear();
  }

  issue(req: IncomingMessage, form: URLSearchParams): { access_token: string; token_type: string; expires_in: number } {
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [clientId, secret] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':') : [];
    const app = clientId ? this.apps.get(clientId) : undefined;
    if (!app || app.secret !== secret) {
      throw new HttpError(401, 'Client Authentication failed', { error: 'invalid_client' });
    }
    if (form.get('grant_type') !== 'client_credentials') {
      throw new HttpError(400, 'unsupported grant_type', { error: 'unsupported_grant_type' });
    }
    const token = `A21AA${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { clientId: app.clientId, expiresAt: Date.now() + this.tokenTtlSeconds * 1000 });
    this.issued.set(app.clientId, (this.issued.get(app.clientId) ?? 0) + 1);
    return { access_token: token, token_type: 'Bearer', expires_in: this.tokenTtlSeconds };
  }

  /** The app a bearer token belongs to, or a 401 as PayPal answers it. */
  authenticate(req: IncomingMessage): SimRestApp {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const entry = token ? this.tokens.get(token) : undefined;
    const app = entry && entry.expiresAt > Date.now() ? this.apps.get(entry.clientId) : undefined;
    if (!app) {
      throw new HttpError(401, 'Authentication failed due to invalid authentication credentials or a missing header', {
        name: 'AUTHENTICATION_FAILURE',
      });
    }
    return app;
  }
}
