import { IPN_MAX_FIELDS, MASSPAY_MAX_ITEMS, summaryProblem } from '../domain/limits';
import { countMasspayItems, isMasspay, summarizeIpn, type IpnSummary } from '../domain/ipn-summary';
import {
  countParts,
  decodeField,
  decodeSplit,
  decodeSplitAsync,
  IpnDecodeError,
  splitIpn,
  type SplitIpn,
} from './decode';

/**
 * Stored bytes to the summary the service acts on. Throws, making the message malformed, when the
 * bytes do not decode, are larger than any PayPal message (fields, Mass Pay items), or carry ids,
 * codes or values no PayPal message has (see limits.ts): intake and the workflows judge a message
 * by these checks alone, so they always agree. The size limits are checked on the raw bytes and
 * keys first, before a value is decoded: an oversized body costs one scan, never a decoding.
 */
export function readIpn(raw: Buffer): { charset: string; summary: IpnSummary } {
  const { split } = bounded(raw);
  const decoded = decodeSplit(split);
  return { charset: decoded.charset, summary: checked(summarizeIpn(decoded.fields)) };
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
 * decoding yields to the event loop (decodeSplitAsync) and the summary leaves the Mass Pay items out.
 */
export async function readIpnHead(raw: Buffer): Promise<IpnHead> {
  const { split, masspayItemCount } = bounded(raw);
  const decoded = await decodeSplitAsync(split);
  const summary = checked(summarizeIpn(decoded.fields, { items: false }));
  return { charset: decoded.charset, summary, masspayItemCount };
}

/** readIpn (Mass Pay items included), yielding to the event loop while it decodes. */
export async function readIpnFull(raw: Buffer): Promise<{ charset: string; summary: IpnSummary }> {
  const { split } = bounded(raw);
  const decoded = await decodeSplitAsync(split);
  return { charset: decoded.charset, summary: checked(summarizeIpn(decoded.fields)) };
}

/** The body split, within the field and item limits; and its number of Mass Pay items. */
function bounded(raw: Buffer): { split: SplitIpn; masspayItemCount: number } {
  if (Buffer.isBuffer(raw) && countParts(raw, IPN_MAX_FIELDS) > IPN_MAX_FIELDS)
    throw new IpnDecodeError(
      'too_many_fields',
      `IPN body has more than ${IPN_MAX_FIELDS} fields: no PayPal message has`,
    );
  const split = splitIpn(raw);
  const keys = split.fields.map((f) => f.key);
  if (!isMasspay(keys, txnTypeOf(split))) return { split, masspayItemCount: 0 };
  const masspayItemCount = countMasspayItems(keys, MASSPAY_MAX_ITEMS);
  if (masspayItemCount > MASSPAY_MAX_ITEMS)
    throw new IpnDecodeError(
      'too_many_items',
      `Mass Pay IPN numbers more than ${MASSPAY_MAX_ITEMS} items (PayPal's maximum for one batch)`,
    );
  return { split, masspayItemCount };
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
