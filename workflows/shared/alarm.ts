import { condition, sleep } from '@temporalio/workflow';

/**
 * Waits for input until a deadline, on timers it never cancels. The SDK's `condition(fn, timeout)`
 * builds a cancellation scope, a race and a dozen promises more for every wait, and its stack-trace
 * hook costs some 40 µs per promise: about 1 ms of the workflow thread per payment, which waits once
 * per message (measured by replaying a payment's history, docs/performance.md). Here a wait arms a
 * timer only when none pending fires by its deadline; one that fires earlier (armed for a deadline
 * since moved on by input) only wakes the wait, which finds its deadline not reached and goes on.
 * Uncancelled timers cost nothing until they fire, and then one activation each.
 */
export function alarm(): (hasInput: () => boolean, afterMs: number) => Promise<boolean> {
  /** When the timers armed and not yet fired fire, in workflow time. */
  const pending = new Set<number>();
  let rings = 0;
  return async (hasInput, afterMs) => {
    // Input already waiting arms nothing: a timer armed now would only fire later for nobody.
    if (hasInput()) return true;
    const deadline = Date.now() + afterMs;
    for (;;) {
      if (![...pending].some((at) => at <= deadline)) {
        pending.add(deadline);
        sleep(Math.max(1, deadline - Date.now())).then(
          () => {
            pending.delete(deadline);
            rings++;
          },
          // Cancelled with the workflow: the wait below is cancelled with it and says so.
          () => pending.delete(deadline),
        );
      }
      const seen = rings;
      await condition(() => hasInput() || rings !== seen);
      if (hasInput()) return true;
      if (Date.now() >= deadline) return false;
    }
  };
}
