import type { Config } from '../shared/config';
import { formatMinor, parseAmount } from '../shared/money';
import { PayPalRestError, restClientFor, restCredentialsFromEnv, restUrl } from '../shared/paypal/rest-client';
import { callNvp, nvpCredentialsFromEnv, nvpUrl, type NvpCredentials } from '../shared/paypal/nvp-client';
import type { Integration } from '../integrations/schema';
import type { CaptureView, PayPalView, TopupApi } from './state';

/**
 * The two PayPal APIs a top-up can go through, behind one shape: create the checkout (order or EC
 * token) and its approval link, capture it, read it back. Capturing twice is safe by construction:
 * Orders v2 gets a PayPal-Request-Id derived from the top-up id (a lost answer is retried with the
 * same id), and ORDER_ALREADY_CAPTURED (Orders v2) or 11607 (Express Checkout) means "already done":
 * the capture is read back instead.
 */

export interface CheckoutRequest {
  topupId: string;
  amountMinor: number;
  currency: string;
  returnUrl: string;
  cancelUrl: string;
}
export interface CheckoutRef {
  topupId: string;
  api: TopupApi;
  paypalRef: string;
  amountMinor: number;
  currency: string;
}

/** PayPal refused for good (a 4xx other than the ones handled): retrying the same call will not help. */
export class CheckoutRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckoutRefused';
  }
}

type Target = Pick<
  Integration,
  'id' | 'mode' | 'receiverEmails' | 'receiverIds' | 'payoutsRestEnv' | 'nvpCredentialsEnv'
>;
type Settings = Pick<Config, 'PAYPAL_SANDBOX_REST_URL' | 'PAYPAL_SANDBOX_NVP_URL' | 'PAYPAL_SANDBOX_WEBSCR_URL'>;

const LIVE_WEBSCR_URL = 'https://www.paypal.com/cgi-bin/webscr';

export function checkoutGateway(config: Settings, integration: Target, env: NodeJS.ProcessEnv = process.env) {
  const payeeOk = (email: string | undefined, merchantId: string | undefined) =>
    (!!email && integration.receiverEmails.includes(email.toLowerCase())) ||
    (!!merchantId && integration.receiverIds.includes(merchantId));

  const rest = () => {
    const creds = integration.payoutsRestEnv ? restCredentialsFromEnv(integration.payoutsRestEnv, env) : null;
    if (!creds) throw new CheckoutRefused(`${integration.id} has no REST app credentials`);
    return restClientFor(restUrl(integration.mode, config.PAYPAL_SANDBOX_REST_URL), creds);
  };
  const nvp = (): { url: string; creds: NvpCredentials } => {
    const creds = integration.nvpCredentialsEnv ? nvpCredentialsFromEnv(integration.nvpCredentialsEnv, env) : null;
    if (!creds) throw new CheckoutRefused(`${integration.id} has no NVP credentials`);
    return { url: nvpUrl(integration.mode, config.PAYPAL_SANDBOX_NVP_URL), creds };
  };

  // ---- Orders v2 ------------------------------------------------------------------------------

  const orderView = (order: OrderBody): PayPalView => {
    const unit = order.purchase_units?.[0];
    const cap = unit?.payments?.captures?.[0];
    const status = ORDER_STATUSES.includes(order.status as never) ? (order.status as PayPalView['order']) : 'UNKNOWN';
    if (!cap) return { order: status, capture: null };
    const currency = cap.amount?.currency_code ?? '';
    const breakdown = cap.seller_receivable_breakdown;
    const capture: CaptureView = {
      id: cap.id ?? '',
      status: captureStatusOf(cap.status),
      currency,
      grossMinor: parseAmount(cap.amount?.value ?? '0', currency),
      feeMinor: breakdown?.paypal_fee?.value ? parseAmount(breakdown.paypal_fee.value, currency) : 0,
      payeeOk: payeeOk(unit?.payee?.email_address, unit?.payee?.merchant_id),
    };
    return { order: status, capture };
  };

  const readOrder = async (ref: CheckoutRef): Promise<PayPalView> => {
    const { body } = await rest().request<OrderBody>(
      'GET',
      `/v2/checkout/orders/${encodeURIComponent(ref.paypalRef)}`,
      {
        context: `GET order of top-up ${ref.topupId}`,
      },
    );
    return orderView(body);
  };

  // ---- Express Checkout (NVP) ------------------------------------------------------------------

  type EcAnswer =
    { ack: 'Success'; fields: Record<string, string> } | { ack: 'Failure'; code: string; shortMessage: string };
  const callEc = async (method: Parameters<typeof callNvp>[2]['method'], params: Record<string, string>) => {
    const { url, creds } = nvp();
    const answer = await callNvp(url, creds, { method, params });
    // callNvp throws what is not an answer: Success or Failure is all that comes back.
    if (answer.ack !== 'Success' && answer.ack !== 'Failure') throw new Error(`${method}: ${answer.message}`);
    return answer as EcAnswer;
  };

  const transactionView = async (txnId: string): Promise<CaptureView> => {
    const t = await callEc('GetTransactionDetails', { TRANSACTIONID: txnId });
    if (t.ack !== 'Success') throw new Error(`GetTransactionDetails ${txnId}: ${t.code} ${t.shortMessage}`);
    const currency = t.fields.CURRENCYCODE ?? '';
    return {
      id: txnId,
      status: captureStatusOf(nvpStatus(t.fields.PAYMENTSTATUS)),
      currency,
      grossMinor: parseAmount(t.fields.AMT ?? '0', currency),
      feeMinor: t.fields.FEEAMT ? parseAmount(t.fields.FEEAMT, currency) : 0,
      payeeOk: payeeOk(t.fields.RECEIVEREMAIL, t.fields.RECEIVERID),
    };
  };

  const readToken = async (ref: CheckoutRef): Promise<PayPalView & { payerId: string | null }> => {
    const d = await callEc('GetExpressCheckoutDetails', { TOKEN: ref.paypalRef });
    if (d.ack !== 'Success') {
      // 10411: the token expired at PayPal; nothing can be captured any more.
      if (d.code === '10411') return { order: 'VOIDED', capture: null, payerId: null };
      throw new Error(`GetExpressCheckoutDetails for top-up ${ref.topupId}: ${d.code} ${d.shortMessage}`);
    }
    const payerId = d.fields.PAYERID || null;
    const txnId = d.fields.PAYMENTREQUEST_0_TRANSACTIONID;
    if (d.fields.CHECKOUTSTATUS === 'PaymentActionCompleted' && txnId)
      return { order: 'COMPLETED', capture: await transactionView(txnId), payerId };
    return { order: payerId ? 'APPROVED' : 'CREATED', capture: null, payerId };
  };

  return {
    async create(req: CheckoutRequest, api: TopupApi): Promise<{ paypalRef: string; approveUrl: string }> {
      const value = formatMinor(req.amountMinor, req.currency);
      if (api === 'orders') {
        const { body } = await rest().request<OrderBody & { links?: { href: string; rel: string }[] }>(
          'POST',
          '/v2/checkout/orders',
          {
            requestId: `${req.topupId}:create`,
            context: `create order for top-up ${req.topupId}`,
            body: {
              intent: 'CAPTURE',
              purchase_units: [
                {
                  custom_id: req.topupId,
                  invoice_id: req.topupId,
                  amount: { currency_code: req.currency, value },
                },
              ],
              payment_source: {
                paypal: {
                  experience_context: {
                    return_url: req.returnUrl,
                    cancel_url: req.cancelUrl,
                    user_action: 'PAY_NOW',
                    shipping_preference: 'NO_SHIPPING',
                  },
                },
              },
            },
          },
        );
        const approve = body.links?.find((l) => l.rel === 'payer-action' || l.rel === 'approve')?.href;
        if (!body.id || !approve) throw new Error(`PayPal's order for top-up ${req.topupId} has no approval link`);
        return { paypalRef: body.id, approveUrl: approve };
      }
      const set = await callEc('SetExpressCheckout', {
        RETURNURL: req.returnUrl,
        CANCELURL: req.cancelUrl,
        NOSHIPPING: '1',
        PAYMENTREQUEST_0_PAYMENTACTION: 'Sale',
        PAYMENTREQUEST_0_AMT: value,
        PAYMENTREQUEST_0_CURRENCYCODE: req.currency,
        PAYMENTREQUEST_0_INVNUM: req.topupId,
        PAYMENTREQUEST_0_CUSTOM: req.topupId,
        PAYMENTREQUEST_0_DESC: 'Account top-up',
      });
      if (set.ack !== 'Success' || !set.fields.TOKEN)
        throw new CheckoutRefused(
          `SetExpressCheckout: ${set.ack === 'Failure' ? `${set.code} ${set.shortMessage}` : 'no token'}`,
        );
      const webscr = integration.mode === 'live' ? LIVE_WEBSCR_URL : config.PAYPAL_SANDBOX_WEBSCR_URL;
      return {
        paypalRef: set.fields.TOKEN,
        approveUrl: `${webscr}?cmd=_express-checkout&token=${encodeURIComponent(set.fields.TOKEN)}`,
      };
    },

    async read(ref: CheckoutRef): Promise<PayPalView> {
      if (ref.api === 'orders') return readOrder(ref);
      const { order, capture } = await readToken(ref);
      return { order, capture };
    },

    async capture(ref: CheckoutRef): Promise<PayPalView> {
      if (ref.api === 'orders') {
        try {
          const { body } = await rest().request<OrderBody>(
            'POST',
            `/v2/checkout/orders/${encodeURIComponent(ref.paypalRef)}/capture`,
            // The same id on every try: PayPal answers a repeat with the first capture's answer.
            { requestId: `${ref.topupId}:capture`, context: `capture top-up ${ref.topupId}`, body: {} },
          );
          return orderView(body);
        } catch (err) {
          if (!(err instanceof PayPalRestError) || err.retryable) throw err;
          const issue = err.details[0]?.issue ?? err.errorName;
          if (issue === 'ORDER_ALREADY_CAPTURED') return readOrder(ref);
          if (issue === 'ORDER_NOT_APPROVED' || issue === 'INSTRUMENT_DECLINED')
            return { order: 'CREATED', capture: null };
          throw new CheckoutRefused(`capture of top-up ${ref.topupId}: ${err.status} ${issue}`);
        }
      }
      const read = await readToken(ref);
      if (read.capture || !read.payerId) return { order: read.order, capture: read.capture };
      const done = await callEc('DoExpressCheckoutPayment', {
        TOKEN: ref.paypalRef,
        PAYERID: read.payerId,
        PAYMENTREQUEST_0_PAYMENTACTION: 'Sale',
        PAYMENTREQUEST_0_AMT: formatMinor(ref.amountMinor, ref.currency),
        PAYMENTREQUEST_0_CURRENCYCODE: ref.currency,
        PAYMENTREQUEST_0_INVNUM: ref.topupId,
        PAYMENTREQUEST_0_CUSTOM: ref.topupId,
        // PayPal's own idempotency for this call: a repeat with the same id gets the first answer.
        MSGSUBID: ref.topupId,
      });
      if (done.ack === 'Success') {
        const txnId = done.fields.PAYMENTINFO_0_TRANSACTIONID;
        if (!txnId) throw new Error(`DoExpressCheckoutPayment for top-up ${ref.topupId}: no transaction id`);
        return { order: 'COMPLETED', capture: await transactionView(txnId) };
      }
      // 11607: this token's payment was already made (our lost answer's twin): read it back.
      if (done.code === '11607') {
        const again = await readToken(ref);
        return { order: again.order, capture: again.capture };
      }
      throw new CheckoutRefused(
        `DoExpressCheckoutPayment for top-up ${ref.topupId}: ${done.code} ${done.shortMessage}`,
      );
    },
  };
}

const ORDER_STATUSES = ['CREATED', 'APPROVED', 'COMPLETED', 'VOIDED'] as const;

interface OrderBody {
  id?: string;
  status?: string;
  purchase_units?: Array<{
    payee?: { email_address?: string; merchant_id?: string };
    payments?: {
      captures?: Array<{
        id?: string;
        status?: string;
        amount?: { currency_code?: string; value?: string };
        seller_receivable_breakdown?: { paypal_fee?: { value?: string } };
      }>;
    };
  }>;
}

function captureStatusOf(status: string | undefined): CaptureView['status'] {
  switch (status) {
    case 'COMPLETED':
    case 'PENDING':
    case 'DECLINED':
    case 'REFUNDED':
    case 'PARTIALLY_REFUNDED':
      return status;
    default:
      return 'FAILED';
  }
}

/** NVP's PAYMENTSTATUS in Orders v2's words. */
function nvpStatus(status: string | undefined): string {
  switch (status) {
    case 'Completed':
      return 'COMPLETED';
    case 'Pending':
    case 'In-Progress':
    case 'Completed-Funds-Held':
      return 'PENDING';
    case 'Refunded':
      return 'REFUNDED';
    case 'Partially-Refunded':
      return 'PARTIALLY_REFUNDED';
    case 'Denied':
    case 'Expired':
    case 'Voided':
      return 'DECLINED';
    default:
      return 'FAILED';
  }
}
