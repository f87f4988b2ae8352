import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DecodedIpn, IpnDecodeError, decodeIpn, ipnCharset } from '../../src/messages/decode';
import { mulberry32 } from '../support/random';
import { SAMPLES_DIR, sample, sampleFiles } from '../support/samples';

function decodeSample(name: string): DecodedIpn {
  return decodeIpn(sample(name));
}

interface IndexRow {
  file: string;
  txnType: string;
  paymentStatus: string;
  charset: string;
  testIpn: string;
}

/** INDEX.md is the independent description of each sample; decoding must agree with it. */
function readIndex(): Map<string, IndexRow> {
  const rows = new Map<string, IndexRow>();
  for (const line of readFileSync(path.join(SAMPLES_DIR, 'INDEX.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const [, file, txnType, paymentStatus, charset, testIpn] = cells;
    if (file === undefined || !file.endsWith('.ipn')) continue;
    rows.set(file, {
      file,
      txnType: txnType ?? '',
      paymentStatus: paymentStatus ?? '',
      charset: charset ?? '',
      testIpn: testIpn ?? '',
    });
  }
  return rows;
}

function decodeError(body: Buffer | string): IpnDecodeError {
  try {
    decodeIpn(typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
  } catch (error) {
    if (error instanceof IpnDecodeError) return error;
    throw error;
  }
  throw new Error(`expected IpnDecodeError for ${JSON.stringify(String(body))}`);
}

describe('decodeIpn on every sample', () => {
  const index = readIndex();

  it('finds samples, each described in INDEX.md', () => {
    expect(sampleFiles.length).toBeGreaterThanOrEqual(27);
    expect([...index.keys()].sort()).toEqual(sampleFiles);
  });

  it.each(sampleFiles)('%s decodes in line with INDEX.md', (name) => {
    const raw = sample(name);
    const decoded = decodeIpn(raw);
    const row = index.get(name);
    if (row === undefined) throw new Error(`${name} missing from INDEX.md`);

    // One pair per "&"-separated segment: escaped "&" inside values must not split.
    expect(decoded.pairs).toHaveLength(raw.toString('latin1').split('&').length);
    expect(decoded.fields['txn_type']).toBe(row.txnType);
    expect(decoded.fields['payment_status'] ?? '').toBe(row.paymentStatus);
    expect(decoded.fields['test_ipn'] ?? '').toBe(row.testIpn);
    if (row.charset === '(none)') {
      expect(decoded.charsetDeclared).toBe(false);
      expect(decoded.charset).toBe('windows-1252');
    } else {
      expect(decoded.charsetDeclared).toBe(true);
      expect(decoded.charset).toBe(row.charset.toLowerCase());
      expect(decoded.fields['charset']).toBe(row.charset);
    }
    expect(ipnCharset(raw)).toBe(decoded.charset);

    for (const [key, value] of decoded.pairs) {
      expect(decoded.fields[key]).toBe(value);
      // Nothing left undecoded and nothing mis-decoded.
      expect(value).not.toMatch(/%[0-9A-Fa-f]{2}/);
      expect(value).not.toContain('\uFFFD');
    }
  });

  it('keeps body order in pairs', () => {
    const decoded = decodeSample('web_accept_completed_01.ipn');
    expect(decoded.pairs.slice(0, 3)).toEqual([
      ['mc_gross', '500.00'],
      ['address_status', 'confirmed'],
      ['payer_id', 'EVMXCLDZJV77Q'],
    ]);
    expect(decoded.pairs.at(-1)).toEqual(['shipping', '0.00']);
  });
});

describe('spaces and escapes', () => {
  it('decodes "+" and %2C in payment_date', () => {
    const { fields } = decodeSample('web_accept_completed_01.ipn');
    expect(fields['payment_date']).toBe('15:23:54 Apr 15, 2005 PDT');
    expect(fields['address_name']).toBe('Tobias Luetke');
    expect(fields['receiver_email']).toBe('tobi@leetsoft.com');
    expect(fields['custom']).toBe('');
  });

  it('decodes %20 spaces (IPN Simulator)', () => {
    const { fields } = decodeSample('canceled_reversal_ipn_simulator_01.ipn');
    expect(fields['payment_date']).toBe('Sun May 24 2015 15:04:11 GMT-0700 (PDT)');
    expect(fields['address_street']).toBe('123 any street');
    expect(fields['invoice']).toBe('D7lNKK8L-urz8D3awchsUA==');
    expect(fields['receiver_id']).toBe('seller@paypalsandbox.com');
  });

  it('keeps escaped "&" and "=" inside a value', () => {
    const { fields } = decodeSample('express_checkout_completed_windows1252_01.ipn');
    expect(fields['custom']).toBe('website_id=13&user_id=21');
    expect(fields['user_id']).toBeUndefined();
  });

  it('keeps %2B as a literal plus and a leading "+" as a space', () => {
    const { fields } = decodeSample('recurring_payment_failed_utf8_01.ipn');
    expect(fields['payer_email']).toBe('hogehoge+P0522@gmail.com');
    expect(fields['receiver_email']).toBe('hogehoge+B@gmail.com');
    expect(fields['period_type']).toBe(' Regular');
  });

  it('decodes %24 and %2F', () => {
    const { fields } = decodeSample('recurring_payment_profile_cancel_brl_01.ipn');
    expect(fields['product_name']).toBe('1 mes de cursos da Caelum no Caelum Online, R$99.99');
    expect(fields['next_payment_date']).toBe('N/A');
  });

  it('treats an unescaped "+" as a space even inside an email, as form encoding requires', () => {
    // The Shift_JIS sample carries a raw "+" in payer_email (other samples send %2B).
    const { fields } = decodeSample('mp_notification_billing_agreement_shift_jis_01.ipn');
    expect(fields['payer_email']).toBe('hogehoge P3@gmail.com');
  });

  it('accepts values containing "=" and unescaped "@"', () => {
    const { fields } = decodeIpn(Buffer.from('a=b=c&payer_email=x@example.com'));
    expect(fields).toEqual({ a: 'b=c', payer_email: 'x@example.com' });
  });
});

describe('charsets', () => {
  it('decodes windows-1252 accented letters from the samples', () => {
    expect(decodeSample('cart_completed_eur_windows1252_01.ipn').fields['first_name']).toBe('Jörg');
    expect(decodeSample('express_checkout_completed_windows1252_01.ipn').fields['first_name']).toBe('Jörg');
    expect(decodeSample('web_accept_pending_unilateral_windows1252_01.ipn').fields['item_name']).toBe(
      'Mercadeo en facebook para microempresarios de bisutería y joyería',
    );
  });

  it('decodes windows-1252 bytes that differ from ISO-8859-1 (€, Œ, “”)', () => {
    const { fields } = decodeIpn(
      Buffer.from('charset=windows-1252&item_name=%80+5+%8C%93x%94&last_name=%C6r%F8sk%F8bing'),
    );
    expect(fields['item_name']).toBe('€ 5 Œ“x”');
    expect(fields['last_name']).toBe('Ærøskøbing');
  });

  it('defaults to windows-1252 when charset is missing', () => {
    const decoded = decodeIpn(Buffer.from('first_name=J%F6rg&item_name=%80'));
    expect(decoded).toMatchObject({ charset: 'windows-1252', charsetDeclared: false });
    expect(decoded.fields).toEqual({ first_name: 'Jörg', item_name: '€' });
  });

  it('treats an empty charset like a missing one', () => {
    const decoded = decodeIpn(Buffer.from('charset=&first_name=J%F6rg'));
    expect(decoded).toMatchObject({ charset: 'windows-1252', charsetDeclared: false });
    expect(decoded.fields['first_name']).toBe('Jörg');
  });

  it('decodes the Shift_JIS sample with its charset', () => {
    const decoded = decodeSample('mp_notification_billing_agreement_shift_jis_01.ipn');
    expect(decoded.charset).toBe('shift_jis');
    expect(decoded.fields['mp_id']).toBe('B-988374119V7692935');
    expect(decoded.fields['last_name']).toBe('Ooo');
  });

  it('decodes Japanese Shift_JIS text, including ASCII-range trail bytes left unescaped', () => {
    // The sample's names are ASCII, so real Japanese text is spliced into its body.
    // 山田 is 8E 52 93 63 and 太郎 is 91 BE 98 59: "R", "c" and "Y" are trail bytes.
    const body = sample('mp_notification_billing_agreement_shift_jis_01.ipn')
      .toString('latin1')
      .replace('last_name=Ooo', 'last_name=%8ER%93c')
      .replace('first_name=Jjj', 'first_name=%91%BE%98Y')
      .replace('mp_desc=', 'mp_desc=%8C%8E%8Az%83v%83%89%83%93');
    const decoded = decodeIpn(Buffer.from(body, 'latin1'));
    expect(decoded.fields['last_name']).toBe('山田');
    expect(decoded.fields['first_name']).toBe('太郎');
    expect(decoded.fields['mp_desc']).toBe('月額プラン');
    expect(decoded.fields['txn_type']).toBe('mp_notification');
  });

  it('decodes non-ASCII UTF-8 names in the UTF-8 sample body', () => {
    // The UTF-8 samples carry only ASCII names, so real ones are spliced in.
    const body = sample('recurring_payment_failed_utf8_01.ipn')
      .toString('latin1')
      .replace('first_name=test', 'first_name=Jos%C3%A9+Ren%C3%A9e')
      .replace('last_name=test', 'last_name=M%C3%BCller-%E5%B1%B1%E7%94%B0')
      .replace('product_name=MY_RECURRSIVE_PAYMENT_102', 'product_name=%E2%82%AC9+%F0%9F%98%80');
    const decoded = decodeIpn(Buffer.from(body, 'latin1'));
    expect(decoded.charset).toBe('utf-8');
    expect(decoded.fields['first_name']).toBe('José Renée');
    expect(decoded.fields['last_name']).toBe('Müller-山田');
    expect(decoded.fields['product_name']).toBe('€9 😀');
  });

  it('decodes the same bytes differently by charset (bytes first, then charset)', () => {
    const bytes = 'first_name=%C3%A9';
    expect(decodeIpn(Buffer.from(`charset=UTF-8&${bytes}`)).fields['first_name']).toBe('é');
    expect(decodeIpn(Buffer.from(`charset=windows-1252&${bytes}`)).fields['first_name']).toBe('Ã©');
  });

  it.each<[string, string, string]>([
    ['utf-8', '%E6%97%A5%E6%9C%AC', '日本'],
    ['UTF-8', '%E6%97%A5%E6%9C%AC', '日本'],
    ['SHIFT_JIS', '%93%FA%96%7B', '日本'],
    ['Big5', '%A4%A4%A4%E5', '中文'],
    ['EUC-JP', '%C6%FC%CB%DC%B8%EC', '日本語'],
    ['windows-1251', '%CF%F0%E8%E2%E5%F2', 'Привет'],
    ['windows-1250', '%8A%9A%C8', 'ŠšČ'],
    ['ISO-8859-1', '%E9%F6', 'éö'],
    ['iso-8859-15', '%A4', '€'],
    ['ISO-8859-2', '%B1', 'ą'],
    ['KOI8-R', '%F0%D2%C9%D7%C5%D4', 'Привет'],
  ])('decodes charset %s', (charset, escaped, expected) => {
    const decoded = decodeIpn(Buffer.from(`charset=${charset}&name=${escaped}`));
    expect(decoded.charset).toBe(charset.toLowerCase());
    expect(decoded.charsetDeclared).toBe(true);
    expect(decoded.fields['name']).toBe(expected);
  });

  it('decodes raw (unescaped) high bytes with the charset too', () => {
    const raw = Buffer.concat([
      Buffer.from('charset=windows-1252&first_name=J'),
      Buffer.from([0xf6]),
      Buffer.from('rg'),
    ]);
    expect(decodeIpn(raw).fields['first_name']).toBe('Jörg');
  });

  it('keeps a leading UTF-8 BOM that is part of a value', () => {
    expect(decodeIpn(Buffer.from('charset=utf-8&a=%EF%BB%BFx')).fields['a']).toBe('\uFEFFx');
  });
});

describe('pairs and fields', () => {
  it('keeps duplicates in pairs, last value wins in fields', () => {
    const decoded = decodeIpn(Buffer.from('payment_status=Pending&txn_id=1&payment_status=Completed'));
    expect(decoded.pairs).toEqual([
      ['payment_status', 'Pending'],
      ['txn_id', '1'],
      ['payment_status', 'Completed'],
    ]);
    expect(decoded.fields['payment_status']).toBe('Completed');
  });

  it('keeps prototype-looking keys as plain data', () => {
    const { fields } = decodeIpn(Buffer.from('__proto__=x&constructor=y&a=1'));
    expect(Object.getPrototypeOf(fields)).toBeNull();
    expect(fields['__proto__']).toBe('x');
    expect(fields['constructor']).toBe('y');
    expect(Object.keys(fields)).toEqual(['__proto__', 'constructor', 'a']);
    expect(decodeIpn(Buffer.from('a=1')).fields['toString']).toBeUndefined();
  });

  it('skips empty segments and keeps empty values', () => {
    const decoded = decodeIpn(Buffer.from('&a=1&&b=&'));
    expect(decoded.pairs).toEqual([
      ['a', '1'],
      ['b', ''],
    ]);
  });
});

describe('errors', () => {
  it.each<[string, Buffer]>([
    ['empty', Buffer.alloc(0)],
    ['whitespace', Buffer.from(' \r\n')],
  ])('rejects an %s body as empty', (_label, body) => {
    const error = decodeError(body);
    expect(error.reason).toBe('empty');
    expect(error.message).toMatch(/empty/);
    expect(error.name).toBe('IpnDecodeError');
    expect(error).toBeInstanceOf(Error);
  });

  it.each(['klingon', 'utf-9', 'base64', 'hex', 'utf-16le', 'utf-7', 'constructor', '__proto__'])(
    'rejects charset %j as unknown',
    (charset) => {
      const error = decodeError(`charset=${charset}&a=1`);
      expect(error.reason).toBe('unknown_charset');
      expect(error.message).toContain(charset.toLowerCase());
    },
  );

  it('rejects conflicting charset declarations', () => {
    const error = decodeError('charset=UTF-8&a=1&charset=Shift_JIS');
    expect(error.reason).toBe('unknown_charset');
    expect(error.message).toMatch(/conflicting.*utf-8.*shift_jis/);
    // Repeating the same charset is not a conflict.
    expect(decodeIpn(Buffer.from('charset=UTF-8&a=1&charset=utf-8')).charset).toBe('utf-8');
  });

  it('rejects a non-ASCII charset name', () => {
    expect(decodeError('charset=utf%E9&a=1').reason).toBe('unknown_charset');
  });

  it.each<[string, RegExp]>([
    ['a=%zz', /"%zz"/],
    ['a=abc%4', /"%4"/],
    ['a=%', /"%"/],
    ['a=1&b=%G0&c=2', /"%G0".*"b"/],
    ['charset=%ZZ&a=1', /"%ZZ"/],
  ])('rejects malformed percent-encoding in %j', (body, message) => {
    const error = decodeError(body);
    expect(error.reason).toBe('bad_encoding');
    expect(error.message).toMatch(message);
  });

  it.each<[string, string]>([
    ['invalid UTF-8', 'charset=UTF-8&first_name=%C3%28'],
    ['truncated UTF-8', 'charset=utf-8&first_name=%E6%97'],
    ['invalid Shift_JIS', 'charset=Shift_JIS&first_name=%FF'],
    ['truncated Shift_JIS', 'charset=Shift_JIS&first_name=%8E'],
    ['byte undefined in windows-1252', 'first_name=%81'],
  ])('rejects %s', (_label, body) => {
    const error = decodeError(body);
    expect(error.reason).toBe('bad_encoding');
    expect(error.message).toContain('first_name');
  });

  it.each<[string, string]>([
    ['JSON', '{"txn_id":"1","mc_gross":"1.00"}'],
    ['JSON with "=" inside', '{"custom":"a=b"}'],
    ['plain text', 'hello world'],
    ['XML', '<?xml version="1.0"?><ipn/>'],
    ['a segment without "="', 'txn_id=1&oops&mc_gross=1.00'],
    ['an empty key', '=value'],
    ['a key with spaces', 'txn id=1'],
  ])('rejects %s as not form-encoded', (_label, body) => {
    const error = decodeError(body);
    expect(error.reason).toBe('not_form');
    expect(error.message).toMatch(/not form-encoded|not a name=value pair/);
  });
});

describe('fuzz: arbitrary bytes never crash', () => {
  const REASONS = ['empty', 'unknown_charset', 'bad_encoding', 'not_form'];
  // Form-ish pieces make the random bodies reach the deeper decoding paths.
  const PIECES = [
    '&',
    '=',
    '%',
    '+',
    '%E6',
    '%97',
    '%A5',
    '%F6',
    '%80',
    '%8E',
    'R',
    'a',
    '_',
    '1',
    'F',
    'charset=',
    'UTF-8',
    'Shift_JIS',
    'windows-1252',
    'Big5',
    'txn_id',
    '%zz',
    ' ',
    '\u00ff',
    '\u0000',
  ];

  function check(body: Buffer): 'ok' | string {
    try {
      const decoded = decodeIpn(body);
      expect(typeof decoded.charset).toBe('string');
      for (const [key, value] of decoded.pairs) {
        expect(typeof key).toBe('string');
        expect(typeof value).toBe('string');
        expect(decoded.fields[key]).toBeDefined();
      }
      return 'ok';
    } catch (error) {
      if (!(error instanceof IpnDecodeError)) throw error;
      expect(REASONS).toContain(error.reason);
      expect(error.message.length).toBeGreaterThan(0);
      return error.reason;
    }
  }

  it('random bytes: returns or throws IpnDecodeError', () => {
    const random = mulberry32(42);
    for (let i = 0; i < 3000; i++) {
      const body = Buffer.alloc(Math.floor(random() * 200));
      for (let j = 0; j < body.length; j++) body[j] = Math.floor(random() * 256);
      check(body);
    }
  });

  it('random form-like bodies: returns or throws IpnDecodeError, reaching every outcome', () => {
    const random = mulberry32(7);
    const outcomes = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      let text = '';
      const count = Math.floor(random() * 30);
      for (let j = 0; j < count; j++) text += PIECES[Math.floor(random() * PIECES.length)] ?? '';
      outcomes.add(check(Buffer.from(text, 'latin1')));
    }
    expect([...outcomes].sort()).toEqual(['bad_encoding', 'empty', 'not_form', 'ok', 'unknown_charset']);
  });
});
