import crypto from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import type { AppDeps } from '../shared/http/deps';
import { HttpError } from '../shared/http/errors';
import { Ledger } from '../shared/ledger';
import type { MoneyMode } from '../shared/money-mode';
import { describeMoney, formatMinor } from '../shared/money';
import { getIntegration } from '../integrations/store';
import { TopupIdSchema } from './contract';
import { TopupLinks } from './links';
import { ownOrigin, publicBase } from './routes';
import { buyerStep, createTopup, savedState } from './service';
import type { TopupState } from './state';

/**
 * The hosted top-up page, for portals that only link to one: plain server-rendered HTML that works
 * without JavaScript. `GET /topup/<link token>` shows the customer's name, balance and amount
 * choices; its form posts back with a CSRF token bound to the link and to this rendering (the
 * attempt), whose top-up id is derived from both, so a double click makes one top-up; then 303 to
 * PayPal. PayPal sends the buyer to /topup/return or /topup/cancel (our pages, named by top-up id
 * only), which apply the step through the workflow and show the outcome with the new balance.
 */
export function topupPageRoutes(deps: AppDeps): Router {
  const { db, client, config } = deps;
  const links = new TopupLinks(config);
  const ledger = new Ledger(db.models);
  const router = new Router({ sensitive: true });
  const topupDeps = { models: db.models, client, config };

  const balanceOf = async (customerId: string, currency: string, mode: MoneyMode) =>
    (await ledger.balances(customerId, mode)).find((b) => b.currency === currency)?.balanceMinor ?? 0;

  const finish = async (ctx: Context, step: 'returned' | 'cancelled') => {
    const id = TopupIdSchema.safeParse(ctx.query.topup);
    const doc = id.success ? await db.models.Topup.findById(id.data).lean() : null;
    if (!doc) return page(ctx, 404, 'Top-up not found', '<p>This top-up link is not known. Nothing was charged.</p>');
    const state = (await buyerStep(topupDeps, doc._id, step)) ?? (await savedState(db.models, doc._id));
    const portal = step === 'returned' ? doc.returnUrl : doc.cancelUrl;
    if (portal) {
      // An API top-up: the portal shows its own page (and reads the top-up by id).
      const target = new URL(portal);
      target.searchParams.set('topup', doc._id);
      ctx.status = 303;
      ctx.redirect(target.toString());
      return;
    }
    const balance = await balanceOf(doc.customerId, doc.currency, doc.mode as MoneyMode);
    const { title, text } = outcome(state, doc.amountMinor, doc.currency);
    return page(
      ctx,
      200,
      title,
      `<p role="status" id="outcome" data-phase="${esc(state?.phase ?? 'unknown')}">${esc(text)}</p>
<p>Your balance: <strong id="balance">${esc(describeMoney(balance, doc.currency))}</strong></p>`,
    );
  };
  router.get('/topup/return', (ctx) => finish(ctx, 'returned'));
  router.get('/topup/cancel', (ctx) => finish(ctx, 'cancelled'));

  const linkOf = (ctx: Context) => {
    const verdict = links.verify(String(ctx.params.token));
    if (!verdict.ok) {
      const text =
        verdict.why === 'expired'
          ? 'This top-up link has expired. Ask for a new one from your account page.'
          : 'This top-up link is not valid.';
      page(ctx, verdict.why === 'expired' ? 410 : 404, 'Top-up link unavailable', `<p>${esc(text)}</p>`);
      return null;
    }
    return verdict.link;
  };

  router.get('/topup/:token', async (ctx) => {
    const link = linkOf(ctx);
    if (!link) return;
    const integration = await getIntegration(db.models, link.integrationId);
    const customer = await db.models.Customer.findById(link.customerId, { name: 1 }).lean();
    const limits = integration?.topups;
    if (!integration || !limits || !customer)
      return page(ctx, 404, 'Top-up unavailable', '<p>Top-ups are not available for this account.</p>');
    const token = String(ctx.params.token);
    const attempt = crypto.randomBytes(12).toString('base64url');
    const balances = await ledger.balances(link.customerId, integration.mode);
    const balanceLines = limits.currencies
      .map((c) => describeMoney(balances.find((b) => b.currency === c)?.balanceMinor ?? 0, c))
      .join(', ');
    let first = true;
    const choices = limits.currencies.flatMap((c) => {
      const min = limits.minMinor[c]!;
      const max = limits.maxMinor[c]!;
      const offered = (limits.choicesMinor[c] ?? []).filter((m) => m >= min && m <= max);
      return [...new Set(offered.length > 0 ? offered : [min, max])].map((minor) => {
        const value = `${c}:${minor}`;
        const checked = first ? ' checked' : '';
        first = false;
        const idAttr = `amount-${c}-${minor}`;
        return `<li><input type="radio" name="choice" id="${esc(idAttr)}" value="${esc(value)}"${checked} required>
<label for="${esc(idAttr)}">${esc(describeMoney(minor, c))}</label></li>`;
      });
    });
    return page(
      ctx,
      200,
      'Top up your account',
      `<p>Account: <strong id="customer">${esc(customer.name)}</strong></p>
<p>Balance: <strong id="balance">${esc(balanceLines)}</strong></p>
<form method="post" action="/topup/${esc(token)}">
<fieldset><legend>Amount</legend><ul>${choices.join('\n')}</ul></fieldset>
<input type="hidden" name="attempt" value="${esc(attempt)}">
<input type="hidden" name="csrf" value="${esc(links.csrf(token, attempt))}">
<button type="submit" id="pay">Pay with PayPal</button>
</form>`,
    );
  });

  router.post('/topup/:token', async (ctx) => {
    const link = linkOf(ctx);
    if (!link) return;
    // A form posted from another site: refused before anything is read (the CSRF token is the main guard).
    const origin = ctx.get('origin');
    const ours = [ownOrigin(ctx), ...(config.PUBLIC_BASE_URL ? [new URL(config.PUBLIC_BASE_URL).origin] : [])];
    if ((origin && origin !== 'null' && !ours.includes(origin)) || ctx.get('sec-fetch-site') === 'cross-site')
      return page(ctx, 403, 'Not allowed', '<p>This form must be sent from the top-up page.</p>');
    if (!ctx.is('application/x-www-form-urlencoded')) throw new HttpError(415, 'expected a form');
    const form = new URLSearchParams(await getRawBody(ctx.req, { limit: '4kb', encoding: 'utf8' }));
    const token = String(ctx.params.token);
    const attempt = form.get('attempt') ?? '';
    if (!/^[A-Za-z0-9_-]{16}$/.test(attempt) || !links.checkCsrf(token, attempt, form.get('csrf') ?? ''))
      return page(ctx, 403, 'Not allowed', '<p>This form has expired or was not sent from the top-up page.</p>');
    const choice = /^([A-Z]{3}):(\d{1,12})$/.exec(form.get('choice') ?? '');
    if (!choice)
      return page(ctx, 400, 'Choose an amount', `<p>Choose an amount. <a href="/topup/${esc(token)}">Back</a></p>`);
    const [, currency, minor] = choice;
    try {
      const created = await createTopup(
        topupDeps,
        { ...link, currency: currency!, amount: formatMinor(Number(minor), currency!) },
        {
          id: links.topupIdOf(token, attempt),
          baseUrl: publicBase(ctx, config.PUBLIC_BASE_URL),
          createdBy: 'hosted-page',
        },
      );
      ctx.status = 303;
      ctx.redirect(created.approveUrl);
    } catch (err) {
      if (!(err instanceof HttpError) || err.status >= 500) throw err;
      return page(ctx, err.status, 'Top-up not possible', `<p>${esc(err.message)}</p>`);
    }
  });

  return router;
}

function outcome(state: TopupState | null, amountMinor: number, currency: string): { title: string; text: string } {
  const money = describeMoney(amountMinor, currency);
  switch (state?.phase) {
    case 'credited':
      return { title: 'Top-up complete', text: `${money} was added to your account.` };
    case 'pending':
    case 'completed':
    case 'capturing':
      return {
        title: 'Payment processing',
        text: `PayPal is still processing your payment of ${money}; it is added to your account when it completes.`,
      };
    case 'cancelled':
      return { title: 'Top-up cancelled', text: 'You cancelled the payment. Nothing was charged.' };
    case 'expired':
      return { title: 'Top-up expired', text: 'The payment was not approved in time. Nothing was charged.' };
    case 'held':
      return { title: 'Payment under review', text: `Your payment of ${money} is being reviewed by our staff.` };
    case 'failed':
      return { title: 'Payment failed', text: 'PayPal did not complete the payment. Nothing was added.' };
    default:
      return { title: 'Payment not approved', text: 'PayPal has not approved this payment yet. Nothing was charged.' };
  }
}

function page(ctx: Context, status: number, title: string, body: string): void {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  // The link token is in the URL: never sent on to PayPal or anyone else, never cached, never framed.
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  ctx.body = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
ul{list-style:none;padding:0}li{margin:.25rem 0}button{font-size:1.1rem;padding:.5rem 1.25rem}
fieldset{border:1px solid #888;border-radius:.25rem}</style></head>
<body><main><h1>${esc(title)}</h1>
${body}
</main></body></html>`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
