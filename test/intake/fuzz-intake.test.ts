import fc from 'fast-check';
import mongoose from 'mongoose';
import { bindModels, type Models } from '../../src/shared/db/models';
import { checkPayment } from '../../src/payments/checks';
import { classify } from '../../src/messages/classify';
import { IpnSummarySchema } from '../../src/messages/summary';
import type { Integration } from '../../src/integrations/schema';
import { ipnCharset } from '../../src/messages/decode';
import { storeIpn } from '../../src/messages/intake';
import { buildBody, check, decodeOrReason, fuzzCaseArb, fuzzSeed, type FuzzCase } from '../support/ipn-fuzz';

const SEED = fuzzSeed('fuzz-intake');
// Sized to finish well inside its time limit on a loaded 2-core machine (~80 s at the slowest seen).
const IN_PROCESS_RUNS = 40_000;

const integration: Integration = {
  id: 'fuzz',
  name: 'Fuzz',
  mode: 'sandbox',
  ipnEnabled: true,
  verifyTransaction: true,
  allowedTxnTypes: ['web_accept', 'cart'],
  allowedCurrencies: ['USD', 'EUR'],
  receiverEmails: ['seller@paypalsandbox.com'],
  receiverIds: [],
  feePolicy: 'net',
  matchBy: ['custom', 'email'],
};

describe(`in process: decode, summary and intake's field derivation (seed ${SEED})`, () => {
  // storeIpn's I/O is two gathered driver inserts (outbox, then message); here the message is checked against the
  // real mongoose schema it bypasses, without a server (fuzz-intake-stack stores for real).
  const conn = mongoose.createConnection();
  const real = bindModels(conn);
  let created: Array<Record<string, unknown>> = [];
  const recording = {
    IpnOutbox: { collection: { insertMany: async (docs: unknown[]) => docs } },
    IpnMessage: {
      collection: {
        insertMany: async (docs: Array<Record<string, unknown>>) => {
          for (const doc of docs) {
            const m = new real.IpnMessage(doc);
            const invalid = m.validateSync();
            if (invalid) throw invalid;
            created.push(doc);
          }
          return { acknowledged: true, insertedCount: docs.length };
        },
      },
    },
  } as unknown as Models;
  afterAll(() => conn.close());

  it(`survives ${IN_PROCESS_RUNS.toLocaleString('en')} generated and mutated bodies`, async () => {
    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    const started = Date.now();
    const result = await fc.check(
      fc.asyncProperty(fuzzCaseArb, async (c: FuzzCase) => {
        const raw = buildBody(c);
        const got = decodeOrReason(raw);
        if ('reason' in got) {
          count(`decode error: ${got.reason}`);
        } else {
          const { summary } = got;
          check(IpnSummarySchema.safeParse(summary).success, 'summary does not match its schema', summary);
          for (const [key, value] of Object.entries(summary)) {
            check(typeof value !== 'string' || value.trim() !== '', 'blank summary field', key);
          }
          check(got.charset === ipnCharset(raw), 'ipnCharset disagrees with decodeIpn', [got.charset, ipnCharset(raw)]);
          // The pure code processIpn runs on a summary must not throw either (it would fail a workflow task).
          const route = classify(summary);
          count(`route: ${route.kind}`);
          if (
            route.kind !== 'masspay' &&
            route.kind !== 'lifecycle' &&
            route.kind !== 'unknown' &&
            route.kind !== 'profile'
          ) {
            const checks = checkPayment(summary, integration, route.kind);
            for (const minor of [checks.grossMinor, checks.feeMinor])
              check(minor === null || Number.isSafeInteger(minor), 'amount not a safe integer', minor);
          }
        }

        created = [];
        const stored = await storeIpn(recording, {
          integrationId: 'fuzz',
          raw,
          contentType: 'application/x-www-form-urlencoded',
          ipnEnabled: true,
        });
        check(
          created.length === 1 && created[0]!.raw === raw,
          'intake did not build exactly one document with the raw bytes',
        );
        const doc = created[0]!;
        if ('reason' in got) {
          check(
            typeof doc.decodeError === 'string' &&
              JSON.stringify(doc.flags) === '["malformed"]' &&
              stored.txnId === null,
            'undecodable body not flagged malformed',
            doc.flags,
          );
        } else {
          const want = {
            txnId: got.summary.txnId,
            txnType: got.summary.txnType,
            paymentStatus: got.summary.paymentStatus,
          };
          const have = { txnId: stored.txnId, txnType: stored.txnType, paymentStatus: stored.paymentStatus };
          check(
            doc.decodeError === undefined && JSON.stringify(want) === JSON.stringify(have),
            'intake derived other fields than the summary',
            { want, have },
          );
        }
      }),
      { seed: SEED, numRuns: IN_PROCESS_RUNS, interruptAfterTimeLimit: 150_000, markInterruptAsFailure: true },
    );
    process.stderr.write(
      `[fuzz-intake] ${result.numRuns} bodies in ${Date.now() - started} ms: ` +
        `${JSON.stringify(Object.fromEntries([...outcomes].sort()))}\n`,
    );
    if (result.failed)
      throw new Error(`${fc.defaultReportMessage(result) ?? 'property failed'}\n${String(result.errorInstance)}`);
    expect(result.numRuns).toBe(IN_PROCESS_RUNS);
    // The mix must reach both sides: bodies the service acts on, and each kind of refusal.
    expect([...outcomes.keys()]).toEqual(
      expect.arrayContaining([
        'route: payment',
        'route: lifecycle',
        'decode error: bad_encoding',
        'decode error: unknown_charset',
        'decode error: not_form',
      ]),
    );
  }, 180_000);
});
