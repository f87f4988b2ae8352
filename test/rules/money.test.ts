import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CURRENCY_EXPONENTS,
  MoneyError,
  currencyExponent,
  formatMinor,
  isSupportedCurrency,
  parseAmount,
} from '../../src/shared/money';
import { mulberry32 } from '../support/random';

const ALL_CURRENCIES = Object.keys(CURRENCY_EXPONENTS);

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('currencies', () => {
  it("lists PayPal's 25 currencies with the right exponents", () => {
    expect(ALL_CURRENCIES.sort()).toEqual(
      [
        'AUD',
        'BRL',
        'CAD',
        'CNY',
        'CZK',
        'DKK',
        'EUR',
        'HKD',
        'HUF',
        'ILS',
        'JPY',
        'MYR',
        'MXN',
        'TWD',
        'NZD',
        'NOK',
        'PHP',
        'PLN',
        'GBP',
        'RUB',
        'SGD',
        'SEK',
        'CHF',
        'THB',
        'USD',
      ].sort(),
    );
    const zeroDecimal = ALL_CURRENCIES.filter((c) => currencyExponent(c) === 0).sort();
    expect(zeroDecimal).toEqual(['HUF', 'JPY', 'TWD']);
    for (const c of ALL_CURRENCIES.filter((c) => !zeroDecimal.includes(c))) {
      expect(currencyExponent(c)).toBe(2);
    }
  });

  it('is frozen so no caller can change an exponent at runtime', () => {
    expect(Object.isFrozen(CURRENCY_EXPONENTS)).toBe(true);
  });

  it.each(['USD', 'JPY', 'EUR'])('supports %s', (code) => {
    expect(isSupportedCurrency(code)).toBe(true);
  });

  it.each(['usd', ' USD', 'XXX', '', 'BTC', 'constructor', '__proto__', 'toString', 'hasOwnProperty'])(
    'rejects %j',
    (code) => {
      expect(isSupportedCurrency(code)).toBe(false);
      const error = thrownBy(() => currencyExponent(code));
      expect(error).toBeInstanceOf(MoneyError);
      expect((error as MoneyError).currency).toBe(code);
      expect((error as MoneyError).message).toContain(JSON.stringify(code));
    },
  );
});

describe('parseAmount', () => {
  it.each<[string, string, number]>([
    ['12.34', 'USD', 1234],
    ['-12.34', 'USD', -1234],
    ['12.3', 'USD', 1230],
    ['12', 'USD', 1200],
    ['0.05', 'USD', 5],
    ['-0.05', 'USD', -5],
    ['0', 'USD', 0],
    ['0.00', 'EUR', 0],
    ['007.50', 'GBP', 750],
    ['  19.95\n', 'USD', 1995],
    ['1000.00', 'JPY', 1000],
    ['1000.000000', 'JPY', 1000],
    ['1', 'JPY', 1],
    ['-1', 'HUF', -1],
    ['250', 'TWD', 250],
    ['12.340', 'USD', 1234],
    ['9690.00', 'USD', 969000],
    ['90071992547409.91', 'USD', Number.MAX_SAFE_INTEGER],
    ['-90071992547409.91', 'USD', -Number.MAX_SAFE_INTEGER],
    ['9007199254740991', 'JPY', Number.MAX_SAFE_INTEGER],
  ])('parses %j %s as %d', (text, currency, expected) => {
    const minor = parseAmount(text, currency);
    expect(minor).toBe(expected);
    expect(Number.isSafeInteger(minor)).toBe(true);
  });

  it('never returns negative zero', () => {
    expect(Object.is(parseAmount('-0.00', 'USD'), 0)).toBe(true);
    expect(Object.is(parseAmount('-0', 'JPY'), 0)).toBe(true);
  });

  it.each<[string, string, RegExp]>([
    ['12.345', 'USD', /3 decimal places but USD allows 2/],
    ['12.001', 'USD', /decimal places/],
    ['1.5', 'JPY', /1 decimal places but JPY allows 0/],
    ['100.01', 'HUF', /HUF allows 0/],
    ['', 'USD', /Invalid amount/],
    ['   ', 'USD', /Invalid amount/],
    ['abc', 'USD', /Invalid amount/],
    ['1,000.00', 'USD', /Invalid amount/],
    ['+12.34', 'USD', /Invalid amount/],
    ['.5', 'USD', /Invalid amount/],
    ['5.', 'USD', /Invalid amount/],
    ['1e3', 'USD', /Invalid amount/],
    ['12.34.56', 'USD', /Invalid amount/],
    ['--1', 'USD', /Invalid amount/],
    ['- 1', 'USD', /Invalid amount/],
    ['0x10', 'USD', /Invalid amount/],
    ['Infinity', 'USD', /Invalid amount/],
    ['NaN', 'USD', /Invalid amount/],
    ['١٢', 'USD', /Invalid amount/],
    ['90071992547409.92', 'USD', /exceeds/],
    ['9007199254740992', 'JPY', /exceeds/],
    ['123456789012345678901234567890', 'USD', /exceeds/],
  ])('rejects %j %s', (text, currency, message) => {
    const error = thrownBy(() => parseAmount(text, currency));
    expect(error).toBeInstanceOf(MoneyError);
    expect((error as MoneyError).message).toMatch(message);
    expect((error as MoneyError).value).toBe(text);
    expect((error as MoneyError).currency).toBe(currency);
  });

  it('rejects an unknown currency even for a valid amount', () => {
    const error = thrownBy(() => parseAmount('1.00', 'XYZ'));
    expect(error).toBeInstanceOf(MoneyError);
    expect((error as MoneyError).currency).toBe('XYZ');
  });

  it('does not go through floats (0.1 + 0.2 style amounts stay exact)', () => {
    expect(parseAmount('0.10', 'USD') + parseAmount('0.20', 'USD')).toBe(parseAmount('0.30', 'USD'));
    // 1.005 * 100 is 100.49999999999999 in floating point.
    expect(parseAmount('1.01', 'USD')).toBe(101);
    expect(parseAmount('4.35', 'USD')).toBe(435);
    expect(parseAmount('1.15', 'USD')).toBe(115);
  });
});

describe('formatMinor', () => {
  it.each<[number, string, string]>([
    [1234, 'USD', '12.34'],
    [-1234, 'USD', '-12.34'],
    [5, 'USD', '0.05'],
    [-5, 'USD', '-0.05'],
    [50, 'EUR', '0.50'],
    [0, 'USD', '0.00'],
    [-0, 'USD', '0.00'],
    [100, 'GBP', '1.00'],
    [1000, 'JPY', '1000'],
    [-7, 'HUF', '-7'],
    [0, 'TWD', '0'],
    [Number.MAX_SAFE_INTEGER, 'USD', '90071992547409.91'],
    [Number.MIN_SAFE_INTEGER, 'USD', '-90071992547409.91'],
  ])('formats %d %s as %j', (minor, currency, expected) => {
    expect(formatMinor(minor, currency)).toBe(expected);
  });

  it.each([1.5, 0.1, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53)])('rejects %d', (minor) => {
    const error = thrownBy(() => formatMinor(minor, 'USD'));
    expect(error).toBeInstanceOf(MoneyError);
    expect((error as MoneyError).value).toBe(minor);
    expect((error as MoneyError).message).toMatch(/safe integer/);
  });

  it('rejects an unknown currency', () => {
    expect(() => formatMinor(100, 'usd')).toThrow(MoneyError);
  });
});

describe('round trip', () => {
  const random = mulberry32(0x1badcafe);
  const edges = [
    0,
    1,
    -1,
    9,
    10,
    99,
    100,
    101,
    -100,
    999,
    1000,
    123456,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
  ];
  const values = [...edges];
  for (let i = 0; i < 2000; i++) {
    // Spread magnitudes over every digit count, not just large numbers.
    const digits = 1 + Math.floor(random() * 15);
    const magnitude = Math.floor(random() * 10 ** digits);
    // `magnitude > 0` keeps -0 out: parseAmount deliberately never returns it.
    values.push(random() < 0.5 && magnitude > 0 ? -magnitude : magnitude);
  }

  it.each(ALL_CURRENCIES)('parseAmount(formatMinor(n)) === n for %s', (currency) => {
    for (const minor of values) {
      const text = formatMinor(minor, currency);
      expect(text).toMatch(currencyExponent(currency) === 0 ? /^-?\d+$/ : /^-?\d+\.\d\d$/);
      expect(parseAmount(text, currency)).toBe(minor);
    }
  });

  it('formatMinor(parseAmount(s)) === s for canonical strings', () => {
    for (const text of ['0.01', '-0.99', '12.34', '100.00', '29.95', '-9690.00']) {
      expect(formatMinor(parseAmount(text, 'USD'), 'USD')).toBe(text);
    }
    for (const text of ['0', '1', '-250', '1000']) {
      expect(formatMinor(parseAmount(text, 'JPY'), 'JPY')).toBe(text);
    }
  });
});

describe('purity (money.ts is bundled into Temporal workflows)', () => {
  // Comments are stripped: they may well explain why Buffer is not used.
  const source = readFileSync(path.resolve(__dirname, '../../src/shared/money.ts'), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');

  it('imports nothing and avoids Buffer and float parsing', () => {
    expect(source).not.toMatch(/^\s*import\s/m);
    expect(source).not.toMatch(/\brequire\(/);
    expect(source).not.toMatch(/\bBuffer\b/);
    expect(source).not.toMatch(/\bparseFloat\b|\bMath\./);
  });
});
