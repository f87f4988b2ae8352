import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
export const DEV_DATA_DIR = path.resolve(process.env.IPNFLOW_DATA_DIR || path.join(ROOT, '.data'));

/** A random value generated once per checkout and kept in .data/ (git-ignored, 0600), so restarts keep it. */
export function devSecret(name: string, make: () => string): { value: string; file: string } {
  const file = path.join(DEV_DATA_DIR, name);
  if (fs.existsSync(file)) return { value: fs.readFileSync(file, 'utf8').trim(), file };
  fs.mkdirSync(DEV_DATA_DIR, { recursive: true });
  const value = make();
  fs.writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return { value, file };
}

export const devAdminToken = () => devSecret('admin-token', () => crypto.randomBytes(24).toString('hex'));
export const devOperatorSecretsKey = () =>
  devSecret('operator-secrets-key', () => crypto.randomBytes(32).toString('hex'));

/** Where `npm start` runs its database unless MONGODB_URI says otherwise. */
export const devMongoUri = () => `mongodb://127.0.0.1:${Number(process.env.MONGODB_DEV_PORT || 27018)}`;
