/**
 * Decoding of raw IPN bodies.
 *
 * PayPal percent-encodes the bytes of each value in the charset named by the
 * `charset` field, so the order is: split the raw bytes, percent-decode to
 * bytes, then decode those bytes with the declared charset. Decoding the
 * escapes straight to UTF-8 text (what URLSearchParams does) corrupts every
 * windows-1252 or Shift_JIS message with non-ASCII text.
 *
 * The raw body itself must be kept by the caller for the verification postback;
 * nothing here is meant to be re-serialised.
 */
import iconv from 'iconv-lite';
import { TextDecoder } from 'node:util';

export type IpnDecodeFailure =
  | 'empty'
  | 'unknown_charset'
  | 'bad_encoding'
  | 'not_form'
  // Larger than any PayPal message (see read.ts and domain/limits.ts).
  | 'too_many_fields'
  | 'too_many_items';

export class IpnDecodeError extends Error {
  readonly reason: IpnDecodeFailure;

  constructor(reason: IpnDecodeFailure, message: string) {
    super(message);
    this.name = 'IpnDecodeError';
    this.reason = reason;
  }
}

export interface DecodedIpn {
  /** Lower-cased, trimmed `charset` value, or 'windows-1252' when none is declared. */
  charset: string;
  charsetDeclared: boolean;
  /** Every field in body order, duplicates included. */
  pairs: Array<[string, string]>;
  /** Last value wins; null prototype so keys like "__proto__" or "constructor" stay plain data. */
  fields: Record<string, string>;
}

/** PayPal's own default, used by the IPN Simulator, which sends no `charset`. */
export const DEFAULT_IPN_CHARSET = 'windows-1252';

// PayPal field names are plain ASCII words ("txn_id", "receipt_ID", "mc_gross_1");
// anything else in key position means the body is not an IPN form at all.
const KEY_PATTERN = /^[A-Za-z0-9_.\-[\]]+$/;
const CHARSET_KEY = 'charset';
const PERCENT = 0x25;
const AMPERSAND = 0x26;
const PLUS = 0x2b;
const SPACE = 0x20;
const HEX_DIGIT = /^[0-9A-Fa-f]{2}$/;
// Every printable ASCII character: keys and structure are ASCII, so a charset
// that does not decode these to themselves (base64, hex, UTF-16, UTF-7) cannot
// be the encoding of a form body and is refused rather than producing garbage.
const ASCII_PROBE = Buffer.from(
  Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join(''),
  'latin1',
);
const asciiCompatible = new Map<string, boolean>();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface RawField {
  /** Byte-for-byte text of the key and value (latin1: one char per byte). */
  key: string;
  value: string;
}

/**
 * Returns the charset the body declares (lower-cased, trimmed) or the default,
 * without checking that it is supported: useful for logging a body that
 * decodeIpn rejected. Only reads the raw `charset` field, which is ASCII.
 */
export function ipnCharset(raw: Buffer): string {
  return findCharset(runSteps(splitFields(raw))).charset;
}

export function decodeIpn(raw: Buffer): DecodedIpn {
  return runSteps(decodeSteps(raw));
}

/**
 * Work done in steps, for large bodies: each `yield` is a point where the event loop may run.
 * runSteps goes straight through; runYielding lets the event loop run every `sliceMs` of work, so
 * a large body (a 5,000-item Mass Pay IPN, or a forged megabyte) never holds up other requests for
 * long, and a small one runs in one slice, without yielding at all. Same results, same errors.
 */
export type Steps<T> = Generator<void, T, undefined>;

export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

export async function runYielding<T>(steps: Steps<T>, sliceMs = 8): Promise<T> {
  let sliceStart = performance.now();
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    if (performance.now() - sliceStart > sliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

/** Loop iterations between two yield points. */
export const STEP = 256;

/** decodeIpn in steps. */
export function* decodeSteps(raw: Buffer): Steps<DecodedIpn> {
  return yield* decodeSplitSteps(yield* splitIpnSteps(raw));
}

/** The raw `&`-separated fields (keys checked, values still encoded) and the charset they declare. */
export interface SplitIpn {
  fields: RawField[];
  charset: string;
  declared: boolean;
}

/** Splits the body and checks its keys and charset, decoding no value but `charset`: linear in the bytes. */
export function* splitIpnSteps(raw: Buffer): Steps<SplitIpn> {
  const fields = yield* splitFields(raw);
  const { charset, declared } = findCharset(fields);
  requireUsableCharset(charset);
  return { fields, charset, declared };
}

/** Every value of a split body decoded, as decodeIpn does. */
export function* decodeSplitSteps(split: SplitIpn): Steps<DecodedIpn> {
  const { charset, declared } = split;
  const pairs: Array<[string, string]> = [];
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < split.fields.length; i++) {
    if (i % STEP === STEP - 1) yield;
    const pair = decodeField(split.fields[i]!, charset);
    pairs.push(pair);
    fields[pair[0]] = pair[1];
  }
  return { charset, charsetDeclared: declared, pairs, fields };
}

/** One value of a split body, decoded as decodeIpn would (the key needs no decoding: KEY_PATTERN). */
export function decodeField({ key, value }: RawField, charset: string): [string, string] {
  return [key, decodeComponent(value, charset, `value of ${JSON.stringify(key)}`)];
}

/**
 * How many `&`-separated parts the body has, counting no further than `max + 1`: one scan of the
 * bytes (memchr), so a limit on the number of fields is checked before anything is split or decoded.
 */
export function countParts(raw: Buffer, max: number): number {
  let parts = 1;
  for (let at = raw.indexOf(AMPERSAND); at !== -1 && parts <= max; at = raw.indexOf(AMPERSAND, at + 1)) parts++;
  return parts;
}

function* splitFields(raw: Buffer): Steps<RawField[]> {
  if (!Buffer.isBuffer(raw)) {
    throw new IpnDecodeError('not_form', `IPN body must be a Buffer of raw bytes, got ${typeof raw}`);
  }
  // latin1 maps each byte to one char and back, so splitting on "&" and "=" here
  // is splitting the bytes; those two bytes never occur inside multi-byte
  // characters of the ASCII-compatible charsets PayPal uses.
  const text = raw.toString('latin1');
  if (/^[\t\n\r ]*$/.test(text)) {
    throw new IpnDecodeError('empty', `IPN body is empty (${raw.length} bytes)`);
  }
  const fields: RawField[] = [];
  const segments = text.split('&');
  for (let index = 0; index < segments.length; index++) {
    if (index % STEP === STEP - 1) yield;
    const segment = segments[index]!;
    // Tolerated: a stray "&&" or trailing "&" carries no field.
    if (segment === '') continue;
    const eq = segment.indexOf('=');
    const key = eq === -1 ? segment : segment.slice(0, eq);
    if (eq === -1 || !KEY_PATTERN.test(key)) {
      throw new IpnDecodeError(
        'not_form',
        `IPN body is not form-encoded: segment ${index + 1} ` +
          `(${JSON.stringify(preview(segment))}) is not a name=value pair`,
      );
    }
    fields.push({ key, value: segment.slice(eq + 1) });
  }
  return fields;
}

function findCharset(fields: RawField[]): { charset: string; declared: boolean } {
  const declared = new Set<string>();
  for (const { key, value } of fields) {
    if (key !== CHARSET_KEY) continue;
    const bytes = percentDecode(value, 'value of "charset"');
    if (bytes.some((b) => b < SPACE || b > 0x7e)) {
      throw new IpnDecodeError('unknown_charset', `IPN charset ${JSON.stringify(preview(value))} is not ASCII`);
    }
    const name = bytes.toString('latin1').trim().toLowerCase();
    if (name !== '') declared.add(name);
  }
  if (declared.size > 1) {
    // Which one PayPal meant cannot be known, and guessing would mis-decode names.
    throw new IpnDecodeError('unknown_charset', `IPN declares conflicting charsets: ${[...declared].join(', ')}`);
  }
  const [charset] = declared;
  return charset === undefined ? { charset: DEFAULT_IPN_CHARSET, declared: false } : { charset, declared: true };
}

function requireUsableCharset(charset: string): void {
  let ok = asciiCompatible.get(charset);
  if (ok === undefined) {
    ok = iconv.encodingExists(charset) && iconv.decode(ASCII_PROBE, charset) === ASCII_PROBE.toString('latin1');
    // Names come from untrusted bodies: cap the cache so a stream of made-up
    // charsets cannot grow it without bound.
    if (asciiCompatible.size < 256) asciiCompatible.set(charset, ok);
  }
  if (!ok) {
    throw new IpnDecodeError(
      'unknown_charset',
      `IPN charset ${JSON.stringify(charset)} is not a supported text encoding`,
    );
  }
}

function percentDecode(text: string, what: string): Buffer {
  const out = Buffer.allocUnsafe(text.length);
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === PERCENT) {
      const hex = text.slice(i + 1, i + 3);
      if (!HEX_DIGIT.test(hex)) {
        throw new IpnDecodeError(
          'bad_encoding',
          `Malformed percent-escape ${JSON.stringify(text.slice(i, i + 3))} at offset ${i} in ${what}`,
        );
      }
      out[length++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[length++] = code === PLUS ? SPACE : code;
    }
  }
  return out.subarray(0, length);
}

function decodeComponent(text: string, charset: string, what: string): string {
  const bytes = percentDecode(text, what);
  if (isUtf8(charset)) {
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw new IpnDecodeError('bad_encoding', `Invalid ${charset} byte sequence in ${what}`);
    }
  }
  // BOM stripping would silently drop bytes PayPal sent as part of the value.
  const decoded = iconv.decode(bytes, charset, { stripBOM: false });
  // Legacy charsets cannot encode U+FFFD, so seeing it means iconv hit bytes
  // that are undefined in the declared charset: the text would be a guess.
  if (decoded.includes('\uFFFD')) {
    throw new IpnDecodeError('bad_encoding', `Bytes not valid in ${charset} in ${what}`);
  }
  return decoded;
}

function isUtf8(charset: string): boolean {
  return charset.replace(/[^a-z0-9]/g, '') === 'utf8';
}

function preview(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
