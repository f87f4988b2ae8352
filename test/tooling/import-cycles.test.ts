import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

/** Runs the `cycles` script as npm would (its binary from node_modules/.bin), with extra folders appended. */
function cycles(...extra: string[]) {
  const [bin, ...args] = pkg.scripts.cycles!.split(' ');
  const run = spawnSync(path.join(ROOT, 'node_modules', '.bin', bin!), [...args, ...extra], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  // madge prints its verdict on stderr, the chains on stdout.
  return { status: run.status, output: `${run.output}${run.stderr}` };
}

describe('import cycles (madge), checked by npm test', () => {
  it('npm test runs the checker and tsc before jest', () => {
    expect(pkg.scripts.test).toMatch(/^npm run lint && npm run typecheck && jest$/);
    expect(pkg.scripts.lint).toMatch(/&& npm run cycles$/);
    expect(pkg.scripts.typecheck).toBe('tsc --noEmit -p .');
    expect(pkg.scripts.cycles).toMatch(/^madge --circular .* src workflows activities tools\b/);
  });

  it('finds none in the repository', () => {
    const run = cycles();
    expect(run.output).toMatch(/No circular dependency found/);
    expect(run.status).toBe(0);
  });

  it('fails on a new one, type-only imports included', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-cycle-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.ts'), "import type { B } from './b';\nexport type A = { b?: B };\n");
      fs.writeFileSync(path.join(dir, 'b.ts'), "import type { A } from './a';\nexport type B = { a?: A };\n");
      const run = cycles(dir);
      expect(run.output).toMatch(/Found 1 circular dependency/);
      expect(run.output).toMatch(/a\.ts > .*b\.ts/);
      expect(run.status).not.toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
