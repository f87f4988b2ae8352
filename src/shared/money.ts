/**
 * Exact money handling for PayPal amounts.
 *
 * This module is bundled into Temporal workflows, so it must stay pure: no Node
 * imports, no Buffer, no I/O. Amounts live as integer minor units (cents, or
 * whole yen for zero-decimal currencies) because binary floats cannot represent
 * most decimal fractions and a ledger that drifts by a cent never balances.
 */

/**
 * PayPal's 25 supported currencies and their number of minor-unit digits.
 * HUF, JPY and TWD have no minor unit on PayPal (IPN sends `amount=1`), even
 * though ISO 4217 gives HUF and TWD two decimals: PayPal's rule is what the
 * IPN amounts follow, so it is the one that matters here.
 */
export const CURRENCY_EXPONENTS = Object.freeze({
  AUD: 2,
  BRL: 2,
  CAD: 2,
  CNY: 2,
  CZK: 2,
  DKK: 2,
  EUR: 2,
  HKD: 2,
  HUF: 0,
  ILS: 2,
  JPY: 0,
  MYR: 2,
  MXN: 2,
  TWD: 0,
  NZD: 2,
  NOK: 2,
  PHP: 2,
  PLN: 2,
  GBP: 2,
  RUB: 2,
  SGD: 2,
  SEK: 2,
  CHF: 2,
  THB: 2,
  USD: 2,
} as const);

export type SupportedCurrency = keyof typeof CURRENCY_EXPONENTS;

/** Raised for any amount or currency this module refuses to interpret. */
export class MoneyError extends Error {
  /** The offending input: the amount text, the minor-unit number, or the currency code. */
  readonly value: string | number;
  readonly currency: string;

  constructor(message: string, value: string | number, currency: string) {
    super(message);
    this.name = 'MoneyError';
    this.value = value;
    this.currency = currency;
  }
}

/**
 * Codes are matched exactly (upper case, no trimming): PayPal sends canonical
 * codes, and anything else is better surfaced than silently coerced.
 */
export function isSupportedCurrency(code: string): code is SupportedCurrency {
  // hasOwn, not `in`: "constructor" or "__proto__" must not count as currencies.
  return typeof code === 'string' && Object.hasOwn(CURRENCY_EXPONENTS, code);
}

export function currencyExponent(code: string): number {
  if (!isSupportedCurrency(code)) {
    throw new MoneyError(`Unsupported currency ${JSON.stringify(code)}: not one of PayPal's currencies`, code, code);
  }
  return CURRENCY_EXPONENTS[code];
}

const AMOUNT_PATTERN = /^(-?)(\d+)(?:\.(\d+))?$/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Parses a PayPal decimal string ("-12.34", "1000.00", "1") into integer minor
 * units of `currency`. Works on the digit string only, so no float is ever
 * involved. Extra fraction digits are accepted only when they are zeros: "1000.00"
 * JPY is an exact 1000, while "12.345" USD would need rounding, and rounding
 * money silently is how ledgers go wrong.
 */
export function parseAmount(text: string, currency: string): number {
  const exponent = currencyExponent(currency);
  if (typeof text !== 'string') {
    throw new MoneyError(`Amount must be a string, got ${typeof text}`, String(text), currency);
  }
  const match = AMOUNT_PATTERN.exec(text.trim());
  if (match === null) {
    throw new MoneyError(
      `Invalid amount ${JSON.stringify(text)} for ${currency}: expected a plain decimal like "-12.34"`,
      text,
      currency,
    );
  }
  const [, sign = '', whole = '', fraction = ''] = match;

  const kept = fraction.slice(0, exponent);
  const dropped = fraction.slice(exponent);
  if (/[^0]/.test(dropped)) {
    throw new MoneyError(
      `Amount ${JSON.stringify(text)} has ${fraction.length} decimal places but ${currency} allows ${exponent}`,
      text,
      currency,
    );
  }

  const magnitude = BigInt(whole + kept.padEnd(exponent, '0'));
  if (magnitude > MAX_SAFE) {
    throw new MoneyError(
      `Amount ${JSON.stringify(text)} ${currency} exceeds the largest exactly representable number of minor units`,
      text,
      currency,
    );
  }
  const minor = Number(magnitude);
  // Avoid -0: it prints as "0" but compares unequal under Object.is and in some stores.
  return sign === '-' && minor !== 0 ? -minor : minor;
}

/**
 * Renders integer minor units as the decimal string PayPal uses, with exactly
 * the currency's number of fraction digits ("-12.34", "0.05", "1000" for JPY).
 */
export function formatMinor(minor: number, currency: string): string {
  const exponent = currencyExponent(currency);
  if (!Number.isSafeInteger(minor)) {
    throw new MoneyError(
      `Cannot format ${String(minor)} ${currency}: minor units must be a safe integer`,
      minor,
      currency,
    );
  }
  const negative = minor < 0;
  // Integer-only: the digits are split as a string, never divided.
  const digits = String(negative ? -minor : minor);
  if (exponent === 0) {
    return (negative ? '-' : '') + digits;
  }
  const padded = digits.padStart(exponent + 1, '0');
  const whole = padded.slice(0, padded.length - exponent);
  const fraction = padded.slice(padded.length - exponent);
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}

/**
 * For people (notes, logs, the Web UI): never throws, so an unknown currency in a message can
 * make a line less pretty but never fail the workflow that writes it.
 */
export function describeMoney(minor: number, currency: string): string {
  if (isSupportedCurrency(currency) && Number.isSafeInteger(minor))
    return `${formatMinor(minor, currency)} ${currency}`;
  return `${String(minor)} minor units of ${JSON.stringify(String(currency).slice(0, 16))}`;
}
