/**
 * Production runs compiled JavaScript without source maps (Dockerfile: `node dist/src/worker.js`); tsx
 * turns them on for readable TypeScript stack traces. With them on, every stack captured is mapped: a
 * stack costs about 18 µs instead of 8, and compiling a function twice as much. The Temporal SDK
 * captures a stack and compiles a function for every promise a workflow makes (its stack-trace
 * query), so a worker under tsx measured the development setup, not the product. Loaded with
 * `--import` after tsx by the bench's processes, so it applies to every thread (the SDK's workflow
 * thread included); the bench's own process calls it at its start.
 */
process.setSourceMapsEnabled(false);
