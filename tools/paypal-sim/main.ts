import { startPayPalSimulator } from './index';

/** Standalone PayPal simulator: `tsx tools/paypal-sim/main.ts` (PAYPAL_SIM_PORT, default 8787). */
async function main(): Promise<void> {
  const port = parseIntEnv('PAYPAL_SIM_PORT', 8787);
  const host = process.env.PAYPAL_SIM_HOST ?? '127.0.0.1';
  const timeScale = process.env.PAYPAL_SIM_TIME_SCALE === undefined ? 1 : Number(process.env.PAYPAL_SIM_TIME_SCALE);
  const sim = await startPayPalSimulator({
    port,
    host,
    timeScale,
    logger: (line) => process.stdout.write(`${JSON.stringify(line)}\n`),
  });
  process.stdout.write(`PayPal simulator listening on ${sim.url} (postback: ${sim.verifyUrl})\n`);

  const stop = (signal: string): void => {
    process.stdout.write(`PayPal simulator stopping (${signal})\n`);
    sim.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

function parseIntEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name}=${JSON.stringify(raw)} is not an integer port`);
  return n;
}

main().catch((err: unknown) => {
  process.stderr.write(`PayPal simulator failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
