import { randomBytes } from 'node:crypto';
import { currencyExponent, formatMinor, isSupportedCurrency, parseAmount } from '../../../src/shared/money';
import type { SimRestApp } from './oauth';
import { RestError } from './payouts';
import { webhookEvent, type WebhookEvent } from './webhooks';

/** The buyer every simulated checkout is paid by (personal data the service must not spread). */
export const SIM_BUYER = { payerId: 'SIMBUYER7QX2', email: 'sim.buyer@example.com', given: 'Sim', surname: 'Buyer' };

export type SimCaptureStatus = 'COMPLETED' | 'PENDING' | 'DECLINED';

export interface SimCapture {
  id: string;
  status: SimCaptureStatus;
  currency: string;
  value: string;
  fee: string;
  createdAt: string;
}

export interface SimOrder {
  id: string;
  clientId: string;
  status: 'CREATED' | 'APPROVED' | 'COMPLETED' | 'VOIDED';
  currency: string;
  value: string;
  customId: string;
  invoiceId: string;
  returnUrl: string;
  cancelUrl: string;
  createRequestId?: string;
  approved: boolean;
  capture?: SimCapture;
  /** Capture answers by PayPal-Request-Id: a repeat gets the first answer. */
  captureAnswers: Map<string, unknown>;
}

/** Upper-case letters and digits, as PayPal's ids. */
export const paypalId = (length: number) =>
  Array.from(randomBytes(length), (b) => 'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789'[b % 34]).join('');

/** PayPal's fee on a capture, roughly: 3.49% + a fixed part (0 for currencies without decimals). */
export function simFee(minor: number, currency: string): number {
  return Math.round(minor * 0.0349) + (currencyExponent(currency) > 0 ? 49 : 0);
}

/**
 * Orders v2 as PayPal runs it: create (intent CAPTURE, custom_id), the buyer approves at the approval
 * page, capture (PayPal-Request-Id: a repeat gets the first answer; a second capture of a captured
 * order is ORDER_ALREADY_CAPTURED), get. What a capture should come to is set by tests
 * (`captureOutcomes`); a pending capture completes with `complete()`.
 */
export class SimOrders {
  readonly orders = new Map<string, SimOrder>();
  private readonly byCreateRequest = new Map<string, string>();
  /** One-shot outcomes of the next captures, FIFO; default COMPLETED. */
  readonly captureOutcomes: SimCaptureStatus[] = [];

  constructor(private readonly baseUrl: () => string) {}

  create(app: SimRestApp, body: Record<string, unknown>, requestId: string | undefined): SimOrder {
    const known = requestId ? this.byCreateRequest.get(`${app.clientId}:${requestId}`) : undefined;
    if (known) return this.orders.get(known)!;
    if (body.intent !== 'CAPTURE') throw invalid('intent', 'INVALID_PARAMETER_VALUE');
    const unit = (Array.isArray(body.purchase_units) ? body.purchase_units[0] : undefined) as
      { amount?: { currency_code?: string; value?: string }; custom_id?: string; invoice_id?: string } | undefined;
    const currency = unit?.amount?.currency_code ?? '';
    if (!isSupportedCurrency(currency))
      throw invalid('purchase_units[0].amount.currency_code', 'CURRENCY_NOT_SUPPORTED');
    let minor: number;
    try {
      minor = parseAmount(unit?.amount?.value ?? '', currency);
    } catch {
      throw invalid('purchase_units[0].amount.value', 'DECIMAL_PRECISION');
    }
    if (minor <= 0) throw invalid('purchase_units[0].amount.value', 'CANNOT_BE_ZERO_OR_NEGATIVE');
    const ctx = ((body.payment_source as { paypal?: { experience_context?: Record<string, string> } } | undefined)
      ?.paypal?.experience_context ?? {}) as Record<string, string>;
    if (!ctx.return_url || !ctx.cancel_url)
      throw invalid('payment_source.paypal.experience_context', 'MISSING_REQUIRED_PARAMETER');
    const order: SimOrder = {
      id: paypalId(17),
      clientId: app.clientId,
      status: 'CREATED',
      currency,
      value: formatMinor(minor, currency),
      customId: (unit?.custom_id ?? '').slice(0, 127),
      invoiceId: (unit?.invoice_id ?? '').slice(0, 127),
      returnUrl: ctx.return_url,
      cancelUrl: ctx.cancel_url,
      createRequestId: requestId,
      approved: false,
      captureAnswers: new Map(),
    };
    this.orders.set(order.id, order);
    if (requestId) this.byCreateRequest.set(`${app.clientId}:${requestId}`, order.id);
    return order;
  }

  order(app: SimRestApp, id: string): SimOrder {
    const order = this.orders.get(id);
    if (!order || order.clientId !== app.clientId)
      throw new RestError(404, {
        name: 'RESOURCE_NOT_FOUND',
        message: 'The specified resource does not exist.',
        details: [{ issue: 'INVALID_RESOURCE_ID' }],
      });
    return order;
  }

  /** The buyer approves at PayPal: where the browser goes next. */
  approve(id: string): string {
    const order = this.orders.get(id);
    if (!order) throw new Error(`no order ${id}`);
    if (order.status === 'CREATED') order.status = 'APPROVED';
    order.approved = true;
    const url = new URL(order.returnUrl);
    url.searchParams.set('token', order.id);
    url.searchParams.set('PayerID', SIM_BUYER.payerId);
    return url.toString();
  }

  /** The buyer cancels at PayPal: the order stays as it was; the browser goes to cancel_url. */
  cancelUrlOf(id: string): string {
    const order = this.orders.get(id);
    if (!order) throw new Error(`no order ${id}`);
    const url = new URL(order.cancelUrl);
    url.searchParams.set('token', order.id);
    return url.toString();
  }

  /** Captures an approved order; null when this request id already had its answer (returned as is). */
  capture(
    app: SimRestApp,
    id: string,
    requestId: string | undefined,
  ): { answer: unknown; captured: SimCapture | null } {
    const order = this.order(app, id);
    if (requestId && order.captureAnswers.has(requestId))
      return { answer: order.captureAnswers.get(requestId), captured: null };
    if (order.status === 'COMPLETED') throw unprocessable('ORDER_ALREADY_CAPTURED', 'Order already captured.');
    if (order.status !== 'APPROVED')
      throw unprocessable('ORDER_NOT_APPROVED', 'Payer has not yet approved the Order for payment.');
    const status = this.captureOutcomes.shift() ?? 'COMPLETED';
    const minor = parseAmount(order.value, order.currency);
    order.capture = {
      id: paypalId(17),
      status,
      currency: order.currency,
      value: order.value,
      fee: formatMinor(simFee(minor, order.currency), order.currency),
      createdAt: new Date().toISOString(),
    };
    order.status = 'COMPLETED';
    const answer = this.orderResource(order, app);
    if (requestId) order.captureAnswers.set(requestId, answer);
    return { answer, captured: order.capture };
  }

  /** A pending capture completes (or is denied) at PayPal, later. */
  settle(captureId: string, status: 'COMPLETED' | 'DECLINED'): SimOrder {
    const order = [...this.orders.values()].find((o) => o.capture?.id === captureId);
    if (!order?.capture) throw new Error(`no capture ${captureId}`);
    order.capture.status = status;
    return order;
  }

  orderByCapture(app: SimRestApp, captureId: string): SimOrder {
    const order = [...this.orders.values()].find((o) => o.capture?.id === captureId && o.clientId === app.clientId);
    if (!order)
      throw new RestError(404, { name: 'RESOURCE_NOT_FOUND', message: 'The specified resource does not exist.' });
    return order;
  }

  approveUrl(order: SimOrder): string {
    return `${this.baseUrl()}/checkoutnow?token=${order.id}`;
  }

  orderResource(order: SimOrder, app: SimRestApp | undefined): Record<string, unknown> {
    const payee = {
      email_address: app?.merchantEmail ?? `merchant@${order.clientId.toLowerCase()}.example`,
      merchant_id: app?.merchantId ?? 'SIMMERCHANT01',
    };
    return {
      id: order.id,
      intent: 'CAPTURE',
      status: order.status,
      purchase_units: [
        {
          reference_id: 'default',
          custom_id: order.customId,
          invoice_id: order.invoiceId,
          amount: { currency_code: order.currency, value: order.value },
          payee,
          ...(order.capture ? { payments: { captures: [this.captureResource(order)] } } : {}),
        },
      ],
      ...(order.approved
        ? {
            payer: {
              payer_id: SIM_BUYER.payerId,
              email_address: SIM_BUYER.email,
              name: { given_name: SIM_BUYER.given, surname: SIM_BUYER.surname },
            },
          }
        : {}),
      links: [
        { href: `${this.baseUrl()}/v2/checkout/orders/${order.id}`, rel: 'self', method: 'GET' },
        ...(order.status === 'CREATED' ? [{ href: this.approveUrl(order), rel: 'payer-action', method: 'GET' }] : []),
      ],
    };
  }

  captureResource(order: SimOrder): Record<string, unknown> {
    const c = order.capture!;
    const net = formatMinor(parseAmount(c.value, c.currency) - parseAmount(c.fee, c.currency), c.currency);
    return {
      id: c.id,
      status: c.status,
      amount: { currency_code: c.currency, value: c.value },
      custom_id: order.customId,
      invoice_id: order.invoiceId,
      final_capture: true,
      seller_receivable_breakdown: {
        gross_amount: { currency_code: c.currency, value: c.value },
        paypal_fee: { currency_code: c.currency, value: c.fee },
        net_amount: { currency_code: c.currency, value: net },
      },
      supplementary_data: { related_ids: { order_id: order.id } },
      create_time: c.createdAt,
      update_time: new Date().toISOString(),
    };
  }

  /** What PayPal posts about a capture: its webhook event. */
  captureEvent(order: SimOrder): WebhookEvent {
    const c = order.capture!;
    const type =
      c.status === 'COMPLETED'
        ? 'PAYMENT.CAPTURE.COMPLETED'
        : c.status === 'PENDING'
          ? 'PAYMENT.CAPTURE.PENDING'
          : 'PAYMENT.CAPTURE.DENIED';
    return webhookEvent(type, 'capture', this.captureResource(order));
  }

  /** ...and its IPN (PayPal sends one for Orders v2 captures too, with the capture id as txn_id). */
  captureIpn(order: SimOrder, app: SimRestApp): Buffer {
    const c = order.capture!;
    const status = c.status === 'COMPLETED' ? 'Completed' : c.status === 'PENDING' ? 'Pending' : 'Denied';
    return checkoutIpn({
      txnType: 'express_checkout',
      txnId: c.id,
      status,
      currency: c.currency,
      gross: c.value,
      fee: c.fee,
      custom: order.customId,
      invoice: order.invoiceId,
      receiverEmail: app.merchantEmail ?? `merchant@${order.clientId.toLowerCase()}.example`,
      receiverId: app.merchantId ?? 'SIMMERCHANT01',
    });
  }
}

/** A checkout payment's IPN, as PayPal posts it for Orders v2 and Express Checkout alike. */
export function checkoutIpn(p: {
  txnType: string;
  txnId: string;
  status: string;
  currency: string;
  gross: string;
  fee: string;
  custom: string;
  invoice: string;
  receiverEmail: string;
  receiverId: string;
}): Buffer {
  const fields: Record<string, string> = {
    txn_type: p.txnType,
    txn_id: p.txnId,
    payment_status: p.status,
    ...(p.status === 'Pending' ? { pending_reason: 'paymentreview' } : {}),
    payment_type: 'instant',
    payment_date: new Date().toUTCString(),
    mc_gross: p.gross,
    mc_fee: p.fee,
    mc_currency: p.currency,
    custom: p.custom,
    invoice: p.invoice,
    receiver_email: p.receiverEmail,
    receiver_id: p.receiverId,
    business: p.receiverEmail,
    payer_email: SIM_BUYER.email,
    payer_id: SIM_BUYER.payerId,
    payer_status: 'verified',
    first_name: SIM_BUYER.given,
    last_name: SIM_BUYER.surname,
    quantity: '1',
    item_name: 'Account top-up',
    test_ipn: '1',
    charset: 'UTF-8',
    notify_version: '3.9',
    ipn_track_id: randomBytes(6).toString('hex'),
  };
  return Buffer.from(new URLSearchParams(fields).toString(), 'utf8');
}

function invalid(field: string, issue: string): RestError {
  return new RestError(400, {
    name: 'INVALID_REQUEST',
    message: 'Request is not well-formed, syntactically incorrect, or violates schema.',
    details: [{ field, issue }],
  });
}

function unprocessable(issue: string, description: string): RestError {
  return new RestError(422, {
    name: 'UNPROCESSABLE_ENTITY',
    message: 'The requested action could not be performed, semantically incorrect, or failed business validation.',
    details: [{ issue, description }],
  });
}
