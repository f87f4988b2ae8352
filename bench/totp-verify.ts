/**
 * What the second factor adds to a decision, CPU side: opening the sealed TOTP secret (AES-256-GCM)
 * and verifying a code over the ±1 step window (otplib), as OperatorStore.takeCode does before its one
 * conditional update. `npx tsx bench/totp-verify.ts [iterations]`; the goal is p99 < 5 ms.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { open, seal } from '../src/operators/secret-box';
import { codeAtStep, currentStep, newTotpSecret, verifiedStep } from '../src/operators/totp';

const iterations = Number(process.argv[2] ?? 5_000);
const key = crypto.randomBytes(32);
const secret = newTotpSecret();
const sealed = seal(key, secret, 'bench');
const times: number[] = [];
// Warm-up (JIT), then measured runs.
for (let i = 0; i < 500; i++) verifiedStep(open(key, sealed, 'bench'), codeAtStep(secret, currentStep()), 0);
for (let i = 0; i < iterations; i++) {
  // Alternate a right and a wrong code: a wrong one checks all three steps, the slowest path.
  const code = i % 2 === 0 ? codeAtStep(secret, currentStep()) : '000000';
  const start = process.hrtime.bigint();
  verifiedStep(open(key, sealed, 'bench'), code, 0);
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
times.sort((a, b) => a - b);
const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(3);
const load = os.loadavg()[0]!.toFixed(2);
const what = `TOTP verify (open secret + check ±1 step), ${iterations} runs`;
console.log(`${what}: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms (load ${load})`);
