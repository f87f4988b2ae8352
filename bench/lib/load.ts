/** Latencies in ms of one measured run, and what they add up to. */
export interface RunStats {
  n: number;
  /** Operations that failed (a non-200 answer, a credit never seen); not in the latencies. */
  errors: number;
  firstError?: string;
  wallS: number;
  perS: number;
  p50: number;
  p99: number;
  max: number;
  /** The latencies themselves, ascending: what two runs' percentiles are merged from. */
  sorted: number[];
}

/** Nearest-rank percentile of ascending `xs`. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarize(latencies: number[], wallS: number, errors = 0, firstError?: string): RunStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    n: sorted.length,
    errors,
    firstError,
    wallS,
    perS: sorted.length / wallS,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
    sorted,
  };
}

/** Two runs of one measurement as one: their items over their summed wall time, their latencies together. */
export function mergeStats(a: RunStats, b: RunStats): RunStats {
  return summarize([...a.sorted, ...b.sorted], a.wallS + b.wallS, a.errors + b.errors, a.firstError ?? b.firstError);
}

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * `concurrency` callers each run `op` back to back until `n` have run; `op` returns its own
 * latency in ms (it may time only part of its work). Failures are counted, not timed; after
 * max(3, n/5) of them the run stops early rather than wait out every timeout.
 */
export async function closedLoop(
  n: number,
  concurrency: number,
  op: (i: number) => Promise<number>,
): Promise<RunStats> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const tooMany = Math.max(3, Math.floor(n / 5));
  let next = 0;
  const start = nowMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n && errors < tooMany) {
        const i = next++;
        try {
          latencies.push(await op(i));
        } catch (err) {
          errors++;
          firstError ??= errorText(err);
        }
      }
    }),
  );
  return summarize(latencies, (nowMs() - start) / 1000, errors, firstError);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Smallest, median (the middle one; the mean of the two middle ones for an even count) and largest. */
export function spread(xs: number[]): { min: number; median: number; max: number } {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return { min: NaN, median: NaN, max: NaN };
  const mid = Math.floor(s.length / 2);
  return { min: s[0]!, median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, max: s.at(-1)! };
}
