import { IPN_MAX_FIELDS, MASSPAY_MAX_ITEMS, summaryProblem } from '../shared/limits';
import { isMasspay, masspayItemOf, summarizeIpn, type IpnSummary } from './summary';
import {
  countParts,
  decodeField,
  decodeSplitSteps,
  IpnDecodeError,
  runSteps,
  runYielding,
  splitIpnSteps,
  STEP,
  type SplitIpn,
  type Steps,
} from './decode';

/**
 * Stored bytes to the summary the service acts on. Throws, making the message malformed, when the
 * bytes do not decode, are larger than any PayPal message (fields, Mass Pay items), or carry ids,
 * codes or values no PayPal message has (see limits.ts): intake and the workflows judge a message
 * by these checks alone, so they always agree. The size limits are checked on the raw bytes and
 * keys first, before a value is decoded: an oversized body costs one scan, never a decoding.
 */
export function readIpn(raw: Buffer): { charset: string; summary: IpnSummary } {
  return runSteps(readSteps(raw));
}

/** readIpn (Mass Pay items included), letting the event loop run while it decodes (see runYielding). */
export async function readIpnFull(raw: Buffer): Promise<{ charset: string; summary: IpnSummary }> {
  return runYielding(readSteps(raw));
}

export interface IpnHead {
  charset: string;
  /** Without Mass Pay items (`masspayItems` is empty): bounded, whatever the body. */
  summary: IpnSummary;
  /** How many items the message numbers (0 unless it is Mass Pay); activities read them. */
  masspayItemCount: number;
}

/**
 * readIpn's verdict for the request path and workflow inputs: the same checks and errors, but the
 * event loop runs every few milliseconds (runYielding) and the summary leaves the Mass Pay items out.
 */
export async function readIpnHead(raw: Buffer): Promise<IpnHead> {
  return runYielding(
    (function* (): Steps<IpnHead> {
      const { split, masspayItemCount } = yield* boundedSteps(raw);
      const decoded = yield* decodeSplitSteps(split);
      const summary = checked(summarizeIpn(decoded.fields, { items: false }));
      return { charset: decoded.charset, summary, masspayItemCount };
    })(),
  );
}

function* readSteps(raw: Buffer): Steps<{ charset: string; summary: IpnSummary }> {
  const { split } = yield* boundedSteps(raw);
  const decoded = yield* decodeSplitSteps(split);
  return { charset: decoded.charset, summary: checked(summarizeIpn(decoded.fields)) };
}

/** The body split, within the field and item limits; and its number of Mass Pay items. */
function* boundedSteps(raw: Buffer): Steps<{ split: SplitIpn; masspayItemCount: number }> {
  if (Buffer.isBuffer(raw) && countParts(raw, IPN_MAX_FIELDS) > IPN_MAX_FIELDS)
    throw new IpnDecodeError(
      'too_many_fields',
      `IPN body has more than ${IPN_MAX_FIELDS} fields: no PayPal message has`,
    );
  const split = yield* splitIpnSteps(raw);
  const keys = split.fields.map((f) => f.key);
  if (!isMasspay(keys, txnTypeOf(split))) return { split, masspayItemCount: 0 };
  const items = new Set<string>();
  for (let i = 0; i < keys.length && items.size <= MASSPAY_MAX_ITEMS; i++) {
    if (i % STEP === STEP - 1) yield;
    const item = masspayItemOf(keys[i]!);
    if (item !== null) items.add(item);
  }
  if (items.size > MASSPAY_MAX_ITEMS)
    throw new IpnDecodeError(
      'too_many_items',
      `Mass Pay IPN numbers more than ${MASSPAY_MAX_ITEMS} items (PayPal's maximum for one batch)`,
    );
  return { split, masspayItemCount: items.size };
}

/** The last `txn_type`, as summarizeIpn reads it; one that does not decode fails the whole decoding later. */
function txnTypeOf(split: SplitIpn): string | null {
  let raw;
  for (let i = split.fields.length - 1; i >= 0 && !raw; i--)
    if (split.fields[i]!.key === 'txn_type') raw = split.fields[i];
  try {
    return raw ? decodeField(raw, split.charset)[1] : null;
  } catch {
    return null;
  }
}

function checked(summary: IpnSummary): IpnSummary {
  const problem = summaryProblem(summary);
  if (problem) throw new Error(problem);
  return summary;
}
