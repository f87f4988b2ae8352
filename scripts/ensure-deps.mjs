// Runs before `npm start` and `npm test`: a fresh clone needs nothing but Node and this command.
import { execSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 3)) {
  console.error(`ipnflow needs Node >= 20.3; this is ${process.versions.node}.`);
  process.exit(1);
}

const root = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..');
const read = (file) => fs.readFileSync(path.join(root, file), 'utf8');
const manifest = JSON.parse(read('package.json'));
// What the installed tree was made from: the lock and the dependency fields of package.json (not its
// scripts), by content, so a checkout that only touches timestamps installs nothing.
const wanted = crypto
  .createHash('sha256')
  .update(read('package-lock.json'))
  .update(
    JSON.stringify(
      ['dependencies', 'devDependencies', 'optionalDependencies', 'overrides'].map((k) => manifest[k] ?? null),
    ),
  )
  .digest('hex');
const stamp = path.join(root, 'node_modules', '.ipnflow-installed');
const installed = fs.existsSync(stamp) ? fs.readFileSync(stamp, 'utf8').trim() : undefined;

if (installed !== wanted) {
  console.log('[ipnflow] installing npm dependencies (npm ci, from package-lock.json)...');
  // `npm ci`, not `npm install`: it installs exactly the lock and never rewrites it, so a fresh clone
  // stays clean after `npm start` / `npm test`, and runs what CI and the Dockerfile run.
  try {
    execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
  } catch (err) {
    console.error(
      '[ipnflow] `npm ci` failed. If package.json changed, run `npm install` to bring package-lock.json ' +
        'along (and commit both).',
    );
    process.exit(err.status ?? 1);
  }
  fs.writeFileSync(stamp, `${wanted}\n`);
}
