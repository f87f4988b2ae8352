import type { Models } from './models';

/**
 * One `T` per database handle, made on first use: state a process keeps beside a handle (gathered writes,
 * caches) and shares between every caller of it, gone with the handle.
 */
export function perHandle<T extends object>(make: (models: Models) => T): (models: Models) => T {
  const made = new WeakMap<Models, T>();
  return (models) => {
    let found = made.get(models);
    if (!found) made.set(models, (found = make(models)));
    return found;
  };
}
