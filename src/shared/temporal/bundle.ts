import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/**
 * Where `npm run build` leaves the workflow bundle: beside the compiled code, so a production
 * worker starts without running webpack (about 5 s and much memory on a small machine).
 * From dist/src/shared/temporal this is dist/workflow-bundle.js; in development (tsx) nothing is there
 * and the worker bundles at start.
 */
/**
 * How the service's workflows are bundled, wherever a bundle is made (worker, build, tests, bench):
 * each workflow's module loads lazily (workflows/index.ts) and zod is evaluated once per worker
 * thread instead of once per execution (./workflow-preload.ts). Measured with
 * `npx tsx bench/trace-payment.ts 150 4`: see docs/performance.md.
 */
export const WORKFLOW_BUNDLE = {
  workflowsPath: require.resolve('../../../workflows'),
  preloadModules: [require.resolve('./workflow-preload')],
  // Workflows' failures carry their messages encoded (encrypted when the codec is on): ./failure-converter.ts.
  failureConverterPath: require.resolve('./failure-converter'),
};

const quiet = () => {};
/** For bundling in tests and benches: webpack's progress is noise there, its errors are not. */
export const quietBundlerLogger = {
  trace: quiet,
  debug: quiet,
  info: quiet,
  warn: quiet,
  error: (m: string, meta?: unknown) => console.error(m, meta),
  log: quiet,
};

/** Where a bundler's report goes: our pino logger, or the console for `npm run build`. */
interface ReportTo {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * webpack's report as one short line ("workflow bundle 4.65MB: webpack 5.112.2 compiled successfully in
 * 3932 ms"): the SDK logs its whole module listing at every start, which buried the console. A report
 * with warnings or errors stays whole, at its level.
 */
export function oneLineBundlerLogger(to: ReportTo) {
  let webpack = 'webpack';
  const info = (message: string, meta?: { size?: string }) => {
    if (message === 'Workflow bundle created') return to.info(`workflow bundle ${meta?.size ?? ''}: ${webpack}`);
    if (!message.includes('\n')) return to.info(message);
    webpack = message.trim().split('\n').at(-1)!; // "webpack 5.x compiled successfully in N ms"
    if (/warning/i.test(webpack)) to.warn(message);
  };
  return {
    trace: quiet,
    debug: quiet,
    info,
    warn: (m: string) => to.warn(m),
    error: (m: string) => to.error(m),
    log: (level: string, m: string, meta?: { size?: string }) =>
      level === 'ERROR' ? to.error(m) : level === 'WARN' ? to.warn(m) : level === 'INFO' ? info(m, meta) : undefined,
  };
}

export const PREBUILT_BUNDLE = path.resolve(__dirname, '../../../workflow-bundle.js');

export function prebuiltBundle(): string | undefined {
  return fs.existsSync(PREBUILT_BUNDLE) ? PREBUILT_BUNDLE : undefined;
}

/** `node dist/src/shared/temporal/bundle.js`: the build's last step. */
async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({ ...WORKFLOW_BUNDLE, logger: oneLineBundlerLogger(console) });
  fs.writeFileSync(PREBUILT_BUNDLE, code);
  console.log(`written to ${PREBUILT_BUNDLE}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
