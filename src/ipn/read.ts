import { idFieldsProblem } from '../domain/limits';
import { summarizeIpn, type IpnSummary } from '../domain/ipn-summary';
import { decodeIpn } from './decode';

/**
 * Stored bytes to the summary the service acts on. Throws, making the message malformed, when the
 * bytes do not decode or carry ids and codes no PayPal message has (see limits.ts): intake and the
 * workflow judge a message by this one function, so they always agree.
 */
export function readIpn(raw: Buffer): { charset: string; summary: IpnSummary } {
  const decoded = decodeIpn(raw);
  const summary = summarizeIpn(decoded.fields);
  const problem = idFieldsProblem(summary);
  if (problem) throw new Error(problem);
  return { charset: decoded.charset, summary };
}
