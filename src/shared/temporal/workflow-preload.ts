/**
 * Modules the worker evaluates once per worker thread rather than once per workflow execution
 * (the SDK's `preloadModules`; see workflows/index.ts). Only stateless libraries belong here: the
 * SDK shares and deep-freezes what they export. zod declares itself free of side effects, so a
 * bare `require('zod')` would be dropped from the bundle: this module's export keeps it.
 */
import { z } from 'zod';

// zod sets its global defaults (error locale, memoizer) when the first schema is built: build and
// use one now, before the SDK freezes zod's shared objects, so no workflow ever writes to them.
const warmUp = z.object({ text: z.string().trim().min(1), list: z.array(z.number().int()).optional() });
warmUp.safeParse({ text: ' x ', list: [1] });
warmUp.safeParse({ list: ['y'] });

export const preloaded = [z];
