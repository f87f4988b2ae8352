import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, readBody, sendText } from './http-util';
import type { SimOrders } from './rest/orders';
import type { SimExpressCheckout } from './express';

export const APPROVE_PATH = '/checkoutnow';

/**
 * PayPal's buyer side, as a browser sees it: a page showing what is asked, with "Pay now" and
 * "Cancel and return" buttons (plain forms, no JavaScript). Orders v2 orders (`/checkoutnow?token=`)
 * and Express Checkout tokens (`/cgi-bin/webscr?cmd=_express-checkout&token=EC-…`) alike; paying
 * approves and sends the browser to the merchant's return URL with token and PayerID, cancelling
 * to its cancel URL.
 */
export function checkoutPage(orders: SimOrders, express: SimExpressCheckout) {
  const find = (token: string) => {
    if (token.startsWith('EC-')) {
      const t = express.tokens.get(token);
      return (
        t && {
          what: `${t.amount} ${t.currency}`,
          approve: () => express.approve(token),
          cancel: () => express.cancelUrlOf(token),
        }
      );
    }
    const o = orders.orders.get(token);
    return (
      o && {
        what: `${o.value} ${o.currency}`,
        approve: () => orders.approve(token),
        cancel: () => orders.cancelUrlOf(token),
      }
    );
  };

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (req.method === 'GET') {
      const token = url.searchParams.get('token') ?? '';
      const checkout = find(token);
      if (!checkout) throw new HttpError(404, 'This checkout session is not known or has expired.');
      const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
      sendText(
        res,
        200,
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PayPal (simulator): pay</title></head>
<body><main><h1>PayPal checkout (simulator)</h1>
<p>Pay <strong id="amount">${esc(checkout.what)}</strong> from the account of Sim Buyer.</p>
<form method="post" action="${APPROVE_PATH}"><input type="hidden" name="token" value="${esc(token)}">
<button type="submit" name="action" value="approve" id="approve">Pay now</button>
<button type="submit" name="action" value="cancel" id="cancel">Cancel and return</button></form></main></body></html>`,
        'text/html; charset=utf-8',
      );
      return;
    }
    if (req.method !== 'POST') throw new HttpError(405, 'GET or POST', { allow: 'GET, POST' });
    const form = new URLSearchParams((await readBody(req, 4096)).toString('utf8'));
    const checkout = find(form.get('token') ?? '');
    if (!checkout) throw new HttpError(404, 'This checkout session is not known or has expired.');
    const next = form.get('action') === 'cancel' ? checkout.cancel() : checkout.approve();
    res.writeHead(303, { Location: next, 'Content-Length': 0 });
    res.end();
  };
}
