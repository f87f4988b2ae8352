/**
 * Local activities one at a time, for a workflow whose coroutines run side by side (a payment
 * verifying messages beside its queue). Each local activity gets its sequence number when it is
 * scheduled; on replay its result comes back at once, while in the first run it came back whenever
 * it finished. Two of them in flight at once could finish in either order, and what the workflow
 * scheduled next would then differ on replay (another result under the same number). One at a
 * time, the order they finish in is the order they were scheduled in. They would not run side by
 * side anyway: a workflow task stays open while a local activity runs.
 */
export type Lock = <T>(run: () => Promise<T>) => Promise<T>;

export function oneAtATime(): Lock {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(run: () => Promise<T>): Promise<T> => {
    const result = tail.then(run, run);
    tail = result.catch(() => undefined);
    return result;
  };
}

/** The same activities, each call taken under `lock`. */
export function underLock<T extends object>(activities: T, lock: Lock): T {
  return new Proxy(activities, {
    get(target, name) {
      const fn: unknown = Reflect.get(target, name);
      return typeof fn === 'function'
        ? (...args: unknown[]) => lock(() => (fn as (...a: unknown[]) => Promise<unknown>)(...args))
        : fn;
    },
  });
}
