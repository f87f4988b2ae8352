import { readFileSync } from 'node:fs';
import path from 'node:path';
import { listSamples, samplesDir } from '../../tools/cli/ipn';

/** PayPal's sample IPN bodies (test/fixtures/ipn, or IPNFLOW_SAMPLES_DIR), found as the CLI finds them. */
export const SAMPLES_DIR = samplesDir({ env: process.env, repoRoot: path.resolve(__dirname, '../..') });

export function sample(name: string): Buffer {
  return readFileSync(path.join(SAMPLES_DIR, name.endsWith('.ipn') ? name : `${name}.ipn`));
}

/** Every sample's file name (with its .ipn), sorted. */
export const sampleFiles: string[] = listSamples(SAMPLES_DIR).map((name) => `${name}.ipn`);
