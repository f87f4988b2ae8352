import fs from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const stack = globalThis.__IPNFLOW_STACK__;
  if (!stack) return;
  await Promise.all([stack.temporal?.stop(), stack.mongo?.stop()]);
  fs.rmSync(stack.dir, { recursive: true, force: true });
}
