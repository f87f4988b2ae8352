import fs from 'node:fs';
import path from 'node:path';
import type { OperatorStore } from '../../src/operators/store';
import type { OperatorRole } from '../../src/operators/contract';
import { DEV_DATA_DIR } from './dev-secrets';

/**
 * The demo's people: an admin who manages operators, alice who prepares money, bob who decides it,
 * and the customer portal's service account (top-ups and their links only).
 */
export const DEMO_OPERATORS: ReadonlyArray<{ name: string; role: OperatorRole }> = [
  { name: 'admin', role: 'admin' },
  { name: 'alice', role: 'operator' },
  { name: 'bob', role: 'approver' },
  { name: 'portal', role: 'portal' },
];

/** The viewer whose key the dev Web UI's codec endpoint carries. */
export const WEB_UI_OPERATOR = 'web-ui';
export const webUiKey = (secret: string) => `ipk.${WEB_UI_OPERATOR}.${secret}`;

const keysFile = () => path.join(DEV_DATA_DIR, 'dev-operator-keys.json');

/**
 * Creates the demo operators once and keeps their API keys in .data/ (git-ignored, 0600) so every
 * `npm start` can print them: a development convenience only; a real install shows a key once.
 * Their codes come from `npm run operator -- code <name>` (or an authenticator app and the TOTP URI).
 */
export async function seedOperators(store: OperatorStore, webUiKeySecret: string): Promise<Record<string, string>> {
  const file = keysFile();
  const keys: Record<string, string> = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  for (const { name, role } of DEMO_OPERATORS) {
    if (keys[name] && (await store.get(name))) continue;
    const existing = await store.get(name);
    const created = existing
      ? await store.rotateKey(name, 'npm start (demo seed)')
      : await store.create({ name, role }, 'npm start (demo seed)');
    keys[name] = created!.apiKey!;
  }
  fs.writeFileSync(file, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  // The Web UI's codec endpoint carries this viewer's key (chosen before the API ran: see start.ts).
  if (!(await store.get(WEB_UI_OPERATOR)))
    await store.create({ name: WEB_UI_OPERATOR, role: 'viewer' }, 'npm start (demo seed)', webUiKeySecret);
  return keys;
}
