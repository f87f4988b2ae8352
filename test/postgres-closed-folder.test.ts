import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binariesFor, blockedFolders, postgresRunAs, resolvePostgresBinaries } from '../src/dev/provision/postgres';

/**
 * A clone under /root (mode 700) is closed to the user PostgreSQL runs as when we are root: its
 * binaries are copied once to a folder that user can enter, and still run.
 */
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-closed-'));
fs.chmodSync(work, 0o755); // mkdtemp makes it 700; the copy's parent must be enterable, as /tmp is
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('binaries in a closed folder are copied where the PostgreSQL user can run them', () => {
  const real = resolvePostgresBinaries();
  const closed = path.join(work, 'closed');
  const native = path.join(closed, 'node_modules', 'native');
  // Verbatim, as node_modules has them: its library links are relative.
  fs.cpSync(path.resolve(path.dirname(real.postgres), '..'), native, { recursive: true, verbatimSymlinks: true });
  fs.chmodSync(closed, 0o700);
  const inClosed = {
    initdb: path.join(native, 'bin', 'initdb'),
    postgres: path.join(native, 'bin', 'postgres'),
    version: real.version,
  };
  // Whoever we are, `nobody` cannot enter a root-only folder that root owns (or ours, mode 700).
  const nobody = { name: 'nobody', uid: 65534, gid: 65534 };
  expect([...blockedFolders(nobody, [inClosed.postgres]).keys()]).toContain(closed);

  const shared = path.join(work, 'shared');
  fs.mkdirSync(shared, { mode: 0o755 });
  const usable = binariesFor(nobody, inClosed, shared);
  expect(usable.postgres).toBe(path.join(shared, `ipnflow-postgres-${real.version}`, 'bin', 'postgres'));
  expect(blockedFolders(nobody, [usable.postgres]).size).toBe(0);
  // Found again, not copied twice.
  expect(binariesFor(nobody, inClosed, shared)).toEqual(usable);

  const runAs = postgresRunAs(); // only as root can we become another user
  const as = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
  // initdb loads the ICU libraries through the package's relative links: the copy must carry them.
  for (const [binary, name] of [
    [usable.postgres, 'postgres'],
    [usable.initdb, 'initdb'],
  ] as const) {
    const run = spawnSync(binary, ['--version'], as);
    expect([name, run.status, String(run.stdout), String(run.stderr)]).toEqual([
      name,
      0,
      expect.stringMatching(new RegExp(`^${name} \\(PostgreSQL\\) 16\\.`)),
      '',
    ]);
  }
});
