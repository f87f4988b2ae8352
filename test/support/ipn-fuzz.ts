/**
 * Bad IPN bodies at scale, derived from PayPal's samples: described as plain data (so fast-check
 * prints a failing case readably and shrinks it), then applied to the sample's bytes.
 */
import fc from 'fast-check';
import iconv from 'iconv-lite';
import { replaceField } from '../../tools/cli/ipn';
import { IPN_MAX_FIELDS, MASSPAY_MAX_ITEMS, summaryProblem } from '../../src/shared/limits';
import { masspayItemOf, summarizeIpn, type IpnSummary } from '../../src/messages/summary';
import { IpnDecodeError, decodeIpn } from '../../src/messages/decode';
import { sample, sampleFiles } from './samples';
import { KNOWN_PAYMENT_STATUSES } from '../../src/messages/classify';

/** One seed for every generator in a file: printed, and IPNFLOW_FUZZ_SEED replays a run. */
export function fuzzSeed(file: string): number {
  const fromEnv = process.env.IPNFLOW_FUZZ_SEED;
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isSafeInteger(seed))
    throw new Error(`IPNFLOW_FUZZ_SEED must be an integer, got ${JSON.stringify(fromEnv)}`);
  process.stderr.write(`[${file}] fuzz seed ${seed} (IPNFLOW_FUZZ_SEED=${seed} replays this run)\n`);
  return seed;
}

export const FIXTURES: ReadonlyArray<{ name: string; raw: Buffer }> = sampleFiles.map((f) => ({
  name: f,
  raw: sample(f),
}));

/** The charsets PayPal lets a merchant pick (its "PayPal button language encoding" list). */
export const PAYPAL_CHARSETS = [
  'Big5',
  'EUC-JP',
  'EUC-KR',
  'EUC-TW',
  'gb2312',
  'gbk',
  'HZ-GB-2312',
  'ibm-862',
  'ISO-2022-CN',
  'ISO-2022-JP',
  'ISO-2022-KR',
  'ISO-8859-1',
  'ISO-8859-2',
  'ISO-8859-3',
  'ISO-8859-4',
  'ISO-8859-5',
  'ISO-8859-6',
  'ISO-8859-7',
  'ISO-8859-8',
  'ISO-8859-9',
  'ISO-8859-13',
  'ISO-8859-15',
  'KOI8-R',
  'Shift_JIS',
  'UTF-7',
  'UTF-8',
  'utf-8',
  'UTF-16',
  'UTF-16BE',
  'UTF-16LE',
  'UTF16_PlatformEndian',
  'UTF16_OppositeEndian',
  'UTF-32',
  'UTF-32BE',
  'UTF-32LE',
  'UTF32_PlatformEndian',
  'UTF32_OppositeEndian',
  'US-ASCII',
  'windows-1250',
  'windows-1251',
  'windows-1252',
  'windows-1253',
  'windows-1254',
  'windows-1255',
  'windows-1256',
  'windows-1257',
  'windows-1258',
  'windows-874',
  'windows-949',
  'x-mac-greek',
  'x-mac-turkish',
  'x-mac-centraleurroman',
  'x-mac-cyrillic',
  'ebcdic-cp-us',
  'ibm-1047',
] as const;

export const BOGUS_CHARSETS = [
  'x-klingon',
  'utf-9',
  'base64',
  'hex',
  'binary',
  'ucs2',
  'utf16le',
  'cesu8',
  'constructor',
  '__proto__',
  'toString',
  'UTF8',
  ' utf-8 ',
  '+UTF-8+',
  'utf%2D8',
  '%00',
  '%FF',
  'windows-1252%0A',
  'a'.repeat(300),
];

const TXN_TYPES = [
  'web_accept',
  'cart',
  'express_checkout',
  'send_money',
  'subscr_payment',
  'recurring_payment',
  'masspay',
  'new_case',
  'adjustment',
  'subscr_signup',
  'mp_notification',
  '',
];
/** Currencies as PayPal sends them, as it never does (lower case, padded), and ones it does not support. */
export const CURRENCIES = [
  'USD',
  'EUR',
  'JPY',
  'HUF',
  'GBP',
  'usd',
  'Eur',
  ' USD',
  'INR',
  'XYZ',
  'constructor',
  '__proto__',
  '',
];
export const AMOUNTS = [
  '10.00',
  '0.01',
  '-10.00',
  '0',
  '0.00',
  '-0',
  '1e3',
  '12.345',
  '12.340',
  '99999999999999999999',
  ' 12.00 ',
  '１２',
  'NaN',
  '-',
  '.5',
  '5.',
  '+5',
  '1,000.00',
  '',
];

/** Fields the service reads (and a few it does not). */
const INTERESTING_KEYS = [
  'txn_id',
  'parent_txn_id',
  'txn_type',
  'payment_status',
  'pending_reason',
  'reason_code',
  'receiver_email',
  'receiver_id',
  'business',
  'payer_email',
  'custom',
  'invoice',
  'mc_currency',
  'currency_code',
  'mc_gross',
  'mc_fee',
  'test_ipn',
  'resend',
  'ipn_track_id',
  'recurring_payment_id',
  'subscr_id',
  'case_id',
  'case_type',
  'profile_status',
  'payment_date',
  'masspay_txn_id_1',
  'mc_gross_1',
  'mc_currency_1',
  'status_1',
  'unique_id_1',
  'mc_gross_99999999999999999999',
  'masspay_txn_id_01',
  'item_name',
  'memo',
  'verify_sign',
  'charset',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
];

export type Mutation =
  | { op: 'truncate'; at: number }
  | { op: 'reencode'; to: string; declare: 'target' | 'original' | 'none' }
  | { op: 'badEscape'; at: number; escape: string }
  | { op: 'manyFields'; count: number; key: string; value: string }
  | { op: 'duplicate'; at: number; value: string | null }
  | { op: 'nul'; at: number; literal: boolean }
  | { op: 'randomBytes'; at: number; bytes: number[] }
  | { op: 'replaceBody'; bytes: number[] }
  | { op: 'setField'; key: string; value: string }
  | { op: 'charset'; name: string; add: boolean }
  | { op: 'deleteField'; at: number }
  | { op: 'rawSegment'; at: number; segment: string };

export interface FuzzCase {
  fixture: string;
  mutations: Mutation[];
}

const fraction = fc.nat(9_999).map((n) => n / 10_000);

/** A value as it could sit in a body: plain, percent-encoded UTF-8, raw high bytes, or something PayPal would send. */
const encodedValue: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(...KNOWN_PAYMENT_STATUSES, ...TXN_TYPES, ...CURRENCIES, ...AMOUNTS, '1', 'true', 'N/A'),
  },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map((s) => encodeURIComponent(s)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }) },
  // Very long values: a 1,000-5,000 character txn_id, custom or memo.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1_001, max: 5_000 }), fc.constantFrom('A', '9', '%41', '%E9', 'x+y'))
      .map(([n, unit]) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n)),
  },
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), at: fraction }),
  fc.record({
    op: fc.constant('reencode' as const),
    to: fc.constantFrom(...PAYPAL_CHARSETS, ...BOGUS_CHARSETS),
    declare: fc.constantFrom('target' as const, 'original' as const, 'none' as const),
  }),
  fc.record({
    op: fc.constant('badEscape' as const),
    at: fraction,
    escape: fc.constantFrom('%zz', '%', '%F', '%G0', '%%', '%-1', '%0', '%u00e9', '%%41'),
  }),
  fc.record({
    op: fc.constant('manyFields' as const),
    // Rarely huge (decoding 5,000 fields costs as much as fifty ordinary bodies).
    count: fc.oneof(
      { weight: 19, arbitrary: fc.integer({ min: 1, max: 50 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 6_000 }) },
    ),
    key: fc.constantFrom('item_name', 'x', 'mc_gross_', 'masspay_txn_id_', 'txn_id', 'option_selection'),
    value: fc.constantFrom('', '1', '10.00', 'USD', '%E9', 'a+b'),
  }),
  fc.record({ op: fc.constant('duplicate' as const), at: fraction, value: fc.option(encodedValue, { nil: null }) }),
  fc.record({ op: fc.constant('nul' as const), at: fraction, literal: fc.boolean() }),
  fc.record({
    op: fc.constant('randomBytes' as const),
    at: fraction,
    bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 64 }),
  }),
  fc.record({ op: fc.constant('replaceBody' as const), bytes: fc.array(fc.nat(255), { maxLength: 300 }) }),
  {
    arbitrary: fc.record({
      op: fc.constant('setField' as const),
      key: fc.constantFrom(...INTERESTING_KEYS),
      value: encodedValue,
    }),
    weight: 3,
  },
  fc.record({
    op: fc.constant('charset' as const),
    name: fc.constantFrom(...PAYPAL_CHARSETS, ...BOGUS_CHARSETS),
    add: fc.boolean(),
  }),
  fc.record({ op: fc.constant('deleteField' as const), at: fraction }),
  fc.record({
    op: fc.constant('rawSegment' as const),
    at: fraction,
    segment: fc.constantFrom(
      '&&',
      '&',
      '=',
      '==',
      'a==b',
      '=x',
      'txn_id',
      'a b=1',
      'é=1',
      'key%20x=1',
      '[]=1',
      'a=b=c',
    ),
  }),
);

export const fuzzCaseArb: fc.Arbitrary<FuzzCase> = fc.record({
  fixture: fc.constantFrom(...FIXTURES.map((f) => f.name)),
  mutations: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
});

export function fixtureBytes(name: string): Buffer {
  const f = FIXTURES.find((x) => x.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f.raw;
}

export function buildBody(c: FuzzCase): Buffer {
  return c.mutations.reduce((raw, m) => applyMutation(raw, m), fixtureBytes(c.fixture));
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');
const offset = (raw: Buffer, at: number) => Math.floor(at * (raw.length + 1));

function insertAt(raw: Buffer, at: number, bytes: Buffer): Buffer {
  const i = offset(raw, at);
  return Buffer.concat([raw.subarray(0, i), bytes, raw.subarray(i)]);
}

/** Byte ranges of the `&`-separated segments. */
function segments(raw: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i === raw.length || raw[i] === 0x26) {
      out.push([start, i]);
      start = i + 1;
    }
  }
  return out;
}

function setField(raw: Buffer, key: string, value: string): Buffer {
  return replaceField(raw, key, value) ?? Buffer.concat([raw, latin1(`${raw.length > 0 ? '&' : ''}${key}=${value}`)]);
}

export function applyMutation(raw: Buffer, m: Mutation): Buffer {
  switch (m.op) {
    case 'truncate':
      return raw.subarray(0, offset(raw, m.at));
    case 'reencode':
      return reencode(raw, m.to, m.declare);
    case 'badEscape':
      return insertAt(raw, m.at, latin1(m.escape));
    case 'manyFields': {
      const parts: string[] = [];
      for (let i = 1; i <= m.count; i++) parts.push(`${m.key.endsWith('_') ? `${m.key}${i}` : m.key}=${m.value}`);
      return Buffer.concat([raw, latin1(`&${parts.join('&')}`)]);
    }
    case 'duplicate': {
      const segs = segments(raw).filter(([s, e]) => e > s);
      if (segs.length === 0) return raw;
      const [s, e] = segs[Math.floor(m.at * segs.length)]!;
      const seg = raw.subarray(s, e).toString('latin1');
      const eq = seg.indexOf('=');
      const copy = m.value === null || eq === -1 ? seg : `${seg.slice(0, eq)}=${m.value}`;
      return Buffer.concat([raw, latin1(`&${copy}`)]);
    }
    case 'nul':
      return insertAt(raw, m.at, m.literal ? Buffer.from([0]) : latin1('%00'));
    case 'randomBytes':
      return insertAt(raw, m.at, Buffer.from(m.bytes));
    case 'replaceBody':
      return Buffer.from(m.bytes);
    case 'setField':
      return setField(raw, m.key, m.value);
    case 'charset':
      return m.add ? Buffer.concat([raw, latin1(`&charset=${m.name}`)]) : setField(raw, 'charset', m.name);
    case 'deleteField': {
      const segs = segments(raw);
      const [s, e] = segs[Math.floor(m.at * segs.length)]!;
      return Buffer.concat([raw.subarray(0, s), raw.subarray(Math.min(raw.length, e + 1))]);
    }
    case 'rawSegment':
      return insertAt(raw, m.at, latin1(m.segment));
  }
}

/** How a form encoder writes each byte: unreserved bytes as they are, space as +, the rest %XX. */
const FORM_ESCAPES = Array.from({ length: 256 }, (_, b) => {
  const c = String.fromCharCode(b);
  if (/[A-Za-z0-9_.\-*]/.test(c)) return c;
  return b === 0x20 ? '+' : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
});

/**
 * The body's text written again in another charset, escaped as PayPal escapes it. When the body
 * cannot be decoded, or the target is not an encoding at all, its bytes are escaped as they are.
 */
function reencode(raw: Buffer, to: string, declare: 'target' | 'original' | 'none'): Buffer {
  let pairs: Array<[string, string]>;
  let original: string | undefined;
  try {
    const d = decodeIpn(raw);
    pairs = d.pairs.filter(([k]) => k !== 'charset');
    original = d.charsetDeclared ? d.charset : undefined;
  } catch {
    return Buffer.concat([latin1(`charset=${to}&`), raw]);
  }
  const encode = (text: string): string => {
    let bytes: Buffer;
    try {
      bytes = iconv.encode(text, to);
    } catch {
      bytes = Buffer.from(text, 'utf8'); // not an encoding iconv knows: the bytes stay UTF-8
    }
    let out = '';
    for (const b of bytes) out += FORM_ESCAPES[b];
    return out;
  };
  const head =
    declare === 'target' ? [`charset=${to}`] : declare === 'original' && original ? [`charset=${original}`] : [];
  return latin1([...head, ...pairs.map(([k, v]) => `${k}=${encode(v)}`)].join('&'));
}

/** A few PayPal-shaped transaction ids shared by many messages, so their lifecycles meet. */
export const TXN_POOL = Array.from({ length: 24 }, (_, i) => `FUZZ${String(i).padStart(13, '0')}`);

const flowValue: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(...KNOWN_PAYMENT_STATUSES, ...TXN_TYPES, ...CURRENCIES, ...AMOUNTS, ...TXN_POOL),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'buyer%40paypalsandbox.com',
      'seller%40paypalsandbox.com',
      'BUYER%40PayPalSandbox.com',
      'fuzz-buyer',
      '1',
      'true',
      'chargeback',
      'echeck',
      'unilateral',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((s) => encodeURIComponent(s)) },
  { weight: 1, arbitrary: fc.integer({ min: 1_001, max: 3_000 }).map((n) => 'L'.repeat(n)) },
);

/** Mutations that keep a body shaped like an IPN, so that it gets past decoding into the workflows. */
const flowMutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('setField' as const),
      key: fc.constantFrom(
        'payment_status',
        'mc_currency',
        'currency_code',
        'mc_gross',
        'mc_fee',
        'txn_type',
        'parent_txn_id',
        'custom',
        'payer_email',
        'receiver_email',
        'test_ipn',
        'resend',
        'pending_reason',
        'reason_code',
        'case_id',
        'invoice',
      ),
      value: flowValue,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('duplicate' as const),
      at: fraction,
      value: fc.option(flowValue, { nil: null }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('charset' as const),
      name: fc.constantFrom(...PAYPAL_CHARSETS, 'x-klingon'),
      add: fc.constant(false),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('reencode' as const),
      to: fc.constantFrom('UTF-8', 'windows-1252', 'Shift_JIS', 'ISO-8859-1', 'Big5', 'KOI8-R'),
      declare: fc.constant('target' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('nul' as const), at: fraction, literal: fc.constant(false) }) },
);

export interface FlowCase {
  fixture: string;
  txnId: string;
  parentTxnId: string | null;
  mutations: Mutation[];
  /** Whether the simulator answers VERIFIED to its postback (else INVALID). */
  verified: boolean;
}

export const flowCaseArb: fc.Arbitrary<FlowCase> = fc.record({
  fixture: fc.constantFrom(...FIXTURES.map((f) => f.name)),
  txnId: fc.constantFrom(...TXN_POOL),
  parentTxnId: fc.oneof(
    { weight: 2, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom(...TXN_POOL) },
  ),
  mutations: fc.array(flowMutationArb, { maxLength: 3 }),
  verified: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

/**
 * The case's body, marked test_ipn=1 whatever the mutations did: without it the postback goes to
 * live PayPal, which tests cannot reach (such a message parks for an operator, by design).
 */
export function buildFlowBody(c: FlowCase): Buffer {
  let raw = replaceField(fixtureBytes(c.fixture), 'txn_id', c.txnId) ?? fixtureBytes(c.fixture);
  if (c.parentTxnId !== null) raw = setField(raw, 'parent_txn_id', c.parentTxnId);
  return setField(
    c.mutations.reduce((body, m) => applyMutation(body, m), raw),
    'test_ipn',
    '1',
  );
}

const DECODE_REASONS = ['empty', 'unknown_charset', 'bad_encoding', 'not_form'];

/** A failed invariant, with what was checked, so a counterexample explains itself. */
export function check(ok: boolean, what: string, detail?: unknown): void {
  if (!ok) throw new Error(`${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)?.slice(0, 300)}`}`);
}

/** decodeIpn then summarizeIpn, or the documented IpnDecodeError; anything else thrown fails the property. */
export function decodeOrReason(raw: Buffer): { summary: IpnSummary; charset: string } | { reason: string } {
  try {
    // Larger than any PayPal message (src/messages/read.ts): too many fields, or Mass Pay items by their keys.
    if (Buffer.isBuffer(raw) && raw.toString('latin1').split('&').length > IPN_MAX_FIELDS)
      return { reason: 'too_many_fields' };
    const decoded = decodeIpn(raw);
    check(Object.getPrototypeOf(decoded.fields) === null, 'decoded fields have a prototype');
    const keys = decoded.pairs.map(([key]) => key);
    const items = new Set(keys.map(masspayItemOf).filter((item) => item !== null));
    const massPay = decoded.fields['txn_type'] === 'masspay' || keys.some((k) => /^masspay_txn_id_[1-9]/.test(k));
    if (massPay && items.size > MASSPAY_MAX_ITEMS) return { reason: 'too_many_items' };
    const summary = summarizeIpn(decoded.fields);
    // Intake (readIpn) also refuses ids and values no PayPal message has: such a body is stored as malformed.
    if (summaryProblem(summary)) return { reason: 'not_paypal_ids' };
    return { summary, charset: decoded.charset };
  } catch (err) {
    if (!(err instanceof IpnDecodeError)) throw err;
    check(DECODE_REASONS.includes(err.reason), 'undocumented decode reason', err.reason);
    return { reason: err.reason };
  }
}
