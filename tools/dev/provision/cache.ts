import os from 'node:os';
import path from 'node:path';

/**
 * Tools live outside the repo, keyed by version, so every fresh clone on the
 * machine reuses what an earlier clone built (a Temporal CLI build takes minutes).
 */
export function toolCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IPNFLOW_CACHE_DIR) return path.resolve(env.IPNFLOW_CACHE_DIR);
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'ipnflow', 'tools');
}
