import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '../..');
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'ipn');
/**
 * The reference folder beside the repository on a developer's machine, by its name (src/shared/paypal
 * is ours; a relative mention is judged by where it resolves).
 */
const REFERENCE_FOLDER = /(?<!src\/|\.\.\/)shared\/paypal/;
/** A quoted relative path that climbs: resolved from its file, it must stay inside the repository. */
const CLIMBING_PATH = /['"`]((?:\.\.\/)+[^'"`\s]*)['"`]/g;

function pointsOutside(root: string, file: string, text: string): boolean {
  if (REFERENCE_FOLDER.test(text)) return true;
  for (const [, rel] of text.matchAll(CLIMBING_PATH)) {
    const resolved = path.resolve(root, path.dirname(file), rel!);
    if (resolved !== root && !resolved.startsWith(root + path.sep)) return true;
  }
  return false;
}

/**
 * A fresh clone, alone in its own directory, must run the samples demo: nothing may depend on
 * folders that sit beside the repository on a developer's machine. Only committed files come
 * along, which is what CI runs.
 */
describe('a clone of the repository on its own', () => {
  let parent: string;
  let clone: string;

  beforeAll(() => {
    parent = mkdtempSync(path.join(os.tmpdir(), 'ipnflow-clone-'));
    clone = path.join(parent, 'repo');
    execFileSync('git', ['clone', '--quiet', REPO_ROOT, clone], { stdio: 'pipe' });
    // Dependencies are not committed; borrowing ours keeps the test offline and fast.
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
  });

  afterAll(() => {
    if (parent) rmSync(parent, { recursive: true, force: true });
  });

  it('has no sibling folders to lean on', () => {
    expect(readdirSync(parent)).toEqual(['repo']);
  });

  it('lists every committed sample with `ipn samples`', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, INIT_CWD: clone };
    delete env.IPNFLOW_SAMPLES_DIR;
    const run = spawnSync(path.join(clone, 'node_modules', '.bin', 'tsx'), ['tools/cli/ipn.ts', 'samples'], {
      cwd: clone,
      env,
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const expected = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.ipn'))
      .map((f) => f.slice(0, -'.ipn'.length))
      .sort();
    expect(expected.length).toBeGreaterThanOrEqual(27);
    expect(run.stdout.trim().split('\n')).toEqual(expected);
  });

  it('has no tracked non-markdown file that points outside the repository', () => {
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: clone, encoding: 'utf8' })
      .split('\0')
      .filter((f) => f !== '' && !f.endsWith('.md'));
    expect(files).toContain('tools/cli/ipn.ts');
    const offenders = files.filter((f) => pointsOutside(clone, f, readFileSync(path.join(clone, f), 'latin1')));
    expect(offenders).toEqual([]);
  });
});
