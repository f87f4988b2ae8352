// Runs before `npm start` and `npm test`: a fresh clone needs nothing but Node and this command.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 3)) {
  console.error(`ipnflow needs Node >= 20.3; this is ${process.versions.node}.`);
  process.exit(1);
}

const root = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..');
const installed = path.join(root, 'node_modules', '.package-lock.json');
const lock = path.join(root, 'package-lock.json');
const stale = !fs.existsSync(installed) || fs.statSync(lock).mtimeMs > fs.statSync(installed).mtimeMs;
if (stale) {
  console.log('[ipnflow] installing npm dependencies...');
  // Not `npm ci`: some registries lack optional platform binaries (e.g. @swc/core-darwin-*) at the pinned
  // versions, so the lockfile cannot list them and `npm ci` refuses it; `npm install` honours the lock.
  execSync('npm install --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
}
