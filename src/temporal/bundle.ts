import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/**
 * Where `npm run build` leaves the workflow bundle: beside the compiled code, so a production
 * worker starts without running webpack (about 5 s and much memory on a small machine).
 * From dist/src/temporal this is dist/workflow-bundle.js; in development (tsx) nothing is there
 * and the worker bundles at start.
 */
/**
 * How the service's workflows are bundled, wherever a bundle is made (worker, build, tests, bench):
 * each workflow's module loads lazily (workflows/index.ts) and zod is evaluated once per worker
 * thread instead of once per execution (./workflow-preload.ts). Measured with
 * `npx tsx bench/trace-payment.ts 150 4`: see README, Benchmarks.
 */
export const WORKFLOW_BUNDLE = {
  workflowsPath: require.resolve('../../workflows'),
  preloadModules: [require.resolve('./workflow-preload')],
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

export const PREBUILT_BUNDLE = path.resolve(__dirname, '../../workflow-bundle.js');

export function prebuiltBundle(): string | undefined {
  return fs.existsSync(PREBUILT_BUNDLE) ? PREBUILT_BUNDLE : undefined;
}

/** `node dist/src/temporal/bundle.js`: the build's last step. */
async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode(WORKFLOW_BUNDLE);
  fs.writeFileSync(PREBUILT_BUNDLE, code);
  console.log(`workflow bundle: ${PREBUILT_BUNDLE} (${Math.round(code.length / 1024)} KiB)`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
