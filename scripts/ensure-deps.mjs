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

// The hosted top-up page is tested in a real headless Chromium (playwright-core drives it). It comes
// from Debian's own package, never a download from elsewhere: a fresh machine (CI, a new clone as
// root) gets it here when the tests are set up (`--browser`, npm's pretest; `npm start` does not need
// it); a machine that already has it does nothing. Not root or no apt: say so and go on (only the
// browser tests need it, and they say what is missing).
const CHROMIUM = process.env.IPNFLOW_CHROMIUM ?? '/usr/bin/chromium';
if (process.argv.includes('--browser') && !fs.existsSync(CHROMIUM)) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = fs.existsSync('/usr/bin/apt-get');
  if (isRoot && hasApt) {
    console.log('[ipnflow] installing Debian chromium for the browser tests (apt-get)...');
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      execSync('apt-get update -qq', { stdio: 'inherit', env });
      execSync('apt-get install -y -qq --no-install-recommends chromium', { stdio: 'inherit', env });
    } catch (err) {
      console.error(
        `[ipnflow] apt-get install chromium failed (${err.status ?? err.message}); browser tests will fail.`,
      );
    }
  } else {
    console.warn(
      `[ipnflow] ${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) for the browser tests.`,
    );
  }
}
