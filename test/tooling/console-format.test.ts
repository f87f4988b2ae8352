import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { oneLineBundlerLogger } from '../../src/shared/temporal/bundle';

/** `npm start`'s console: readable lines (pino-pretty) and webpack's report in one line; production stays JSON. */
const script = (destination: string) => `
  const { createLogger } = require(${JSON.stringify(path.resolve(__dirname, '../../src/shared/logger'))});
  const { devLogDestination } = require(${JSON.stringify(path.resolve(__dirname, '../../tools/dev/pretty-log'))});
  createLogger('info', ${destination}).info(
    { url: 'http://localhost:3000', headers: { authorization: 'Bearer admin-secret' } },
    'API server listening',
  );`;
const run = (destination: string, env: NodeJS.ProcessEnv = {}) =>
  execFileSync(process.execPath, ['--import', 'tsx', '-e', script(destination)], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

test("npm start's logs are one readable line each, redacted like production's JSON", () => {
  const pretty = run('devLogDestination()');
  expect(pretty).toMatch(
    /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: API server listening \{"url":"http:\/\/localhost:3000","headers":\{"authorization":"\[redacted\]"\}\}\n$/,
  );
  const json = run('devLogDestination()', { IPNFLOW_LOG_FORMAT: 'json' });
  expect(JSON.parse(json)).toMatchObject({ level: 30, msg: 'API server listening', service: 'ipnflow' });
  // What dist/src/server.js and worker.js do: no destination, JSON.
  expect(JSON.parse(run('undefined')).headers).toEqual({ authorization: '[redacted]' });
  expect(() => run('devLogDestination()', { IPNFLOW_LOG_FORMAT: 'yaml' })).toThrow(
    /IPNFLOW_LOG_FORMAT: expected one of pretty, json \(got "yaml"\)/,
  );
});

test("webpack's bundle report is one short line; its module listing is not printed", async () => {
  const lines: Array<[string, string]> = [];
  const to = {
    info: (m: string) => lines.push(['info', m]),
    warn: (m: string) => lines.push(['warn', m]),
    error: (m: string) => lines.push(['error', m]),
  };
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../bench/floor/workflows'),
    logger: oneLineBundlerLogger(to),
  });
  expect(code.length).toBeGreaterThan(100_000);
  expect(lines).toEqual([
    ['info', expect.stringMatching(/^workflow bundle [\d.]+MB: webpack [\d.]+ compiled successfully in \d+ ms$/)],
  ]);
}, 60_000);
