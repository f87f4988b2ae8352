import fs from 'node:fs';
import path from 'node:path';
import { run, tail } from '../dev/provision/exec';

export const ROOT = path.resolve(__dirname, '../..');

/** The patch the second build carries: recorded as a marker in every workflow history it touches after the roll. */
export const ROLL_PATCH_ID = 'ipnflow-rehearse-roll';

export interface Build {
  label: string;
  dir: string;
  server: string;
  worker: string;
}

const buildOf = (label: string, dir: string): Build => ({
  label,
  dir,
  server: path.join(dir, 'dist', 'src', 'server.js'),
  worker: path.join(dir, 'dist', 'src', 'worker.js'),
});

/** `npm run build` in the checkout: what a deployment runs. */
export async function buildCheckout(): Promise<Build> {
  const r = await run('npm', ['run', 'build', '--silent'], { env: process.env, cwd: ROOT });
  if (r.code !== 0) throw new Error(`npm run build failed (exit ${r.code}):\n${tail(r.stderr + r.stdout)}`);
  return buildOf('A (checkout)', ROOT);
}

/**
 * The next release: a copy of the sources with one `patched()` call added where a payment workflow takes the next
 * message from its inbox, built the same way. Workflows open before the roll replay without the marker (patched
 * answers false in replay) and record it for the messages that reach them afterwards. Never committed.
 */
export async function buildPatched(into: string): Promise<Build> {
  fs.mkdirSync(into, { recursive: true });
  for (const entry of ['src', 'workflows', 'activities', 'tsconfig.json', 'tsconfig.build.json', 'package.json']) {
    fs.cpSync(path.join(ROOT, entry), path.join(into, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(into, 'node_modules'));
  const file = findFile(path.join(into, 'workflows'), 'export async function paymentLifecycle(input');
  const anchor = 'const item = inbox.shift()!;';
  const source = fs.readFileSync(file, 'utf8');
  if (!source.includes(anchor) || !/\bpatched,/.test(source)) {
    throw new Error(`${file}: no \`${anchor}\` (or no patched import) to put the rehearsal's patch after`);
  }
  fs.writeFileSync(file, source.replace(anchor, `${anchor}\n        patched(${JSON.stringify(ROLL_PATCH_ID)});`));
  // The copy's own `npm run build`, whatever it does (where the bundler lives moves with the sources).
  const r = await run('npm', ['run', 'build', '--silent'], { env: process.env, cwd: into });
  if (r.code !== 0) throw new Error(`building the patched copy failed (exit ${r.code}):\n${tail(r.stderr + r.stdout)}`);
  return buildOf('B (patched)', into);
}

function findFile(dir: string, needle: string): string {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = path.join(entry.parentPath, entry.name);
    if (fs.readFileSync(file, 'utf8').includes(needle)) return file;
  }
  throw new Error(`no file under ${dir} contains \`${needle}\``);
}
