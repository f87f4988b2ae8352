import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ConfigSchema, loadConfig } from '../../src/shared/config';
import { SEARCH_ATTRIBUTES } from '../../src/shared/contract';

/**
 * The compose file is configuration nobody runs in CI (no Docker engine there), so these checks
 * are what stops it drifting from the code: env vars the service does not read, a config that
 * would fail loadConfig at boot, api and worker disagreeing on the task queue, or a search
 * attribute the workflows set but the cluster never registered.
 */

const ROOT = path.join(__dirname, '..', '..');

type Env = Record<string, string | undefined>;

/**
 * Compose-style interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err},
 * ${VAR?err}, ${VAR:+alt}, ${VAR+alt}. Required variables that are missing get `required(name)`
 * instead of an error, so a file that demands secrets can still be checked end to end.
 */
export function interpolate(text: string, env: Env, required: (name: string, message: string) => string): string {
  const pattern = /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^{}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;
  const out = text.replace(
    pattern,
    (
      whole,
      dollar: string | undefined,
      braced: string | undefined,
      op: string | undefined,
      arg: string | undefined,
      bare: string | undefined,
    ) => {
      if (dollar) return '$';
      const name = (braced ?? bare)!;
      const value = env[name];
      const isSet = value !== undefined;
      const nonEmpty = isSet && value !== '';
      switch (op) {
        case undefined:
          return value ?? '';
        case ':-':
          return nonEmpty ? value : arg!;
        case '-':
          return isSet ? value : arg!;
        case ':?':
          return nonEmpty ? value : required(name, arg!);
        case '?':
          return isSet ? value : required(name, arg!);
        case ':+':
          return nonEmpty ? arg! : '';
        case '+':
          return isSet ? arg! : '';
        default:
          throw new Error(`unsupported interpolation ${whole}`);
      }
    },
  );
  // A ${ the pattern did not consume is nested or malformed: compose would reject it or we would misread it.
  if (/\$\{/.test(text.replace(pattern, ''))) throw new Error(`unsupported interpolation in ${JSON.stringify(text)}`);
  return out;
}

const dummyFor = (name: string) =>
  // A key must be a key: 32 bytes in hex.
  name === 'OPERATOR_SECRETS_KEY' ? 'ab'.repeat(32) : `dummy-${name}-0123456789abcdef0123456789abcdef`;
const resolve = (text: string) => interpolate(text, {}, dummyFor);

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: unknown;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
}

const composeText = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service> };
const services = compose.services;

/** The environment exactly as written (before interpolation), list or map form. */
function rawEnvironment(svc: Service): Record<string, string> {
  const env = svc.environment ?? {};
  const out: Record<string, string> = {};
  if (Array.isArray(env)) {
    for (const item of env) {
      const eq = item.indexOf('=');
      if (eq < 0) throw new Error(`environment entry ${item} takes its value from the host: not checkable`);
      out[item.slice(0, eq)] = item.slice(eq + 1);
    }
  } else {
    for (const [k, v] of Object.entries(env)) {
      if (v === null) throw new Error(`environment entry ${k} takes its value from the host: not checkable`);
      out[k] = String(v);
    }
  }
  return out;
}

const resolvedEnvironment = (svc: Service): Record<string, string> =>
  Object.fromEntries(Object.entries(rawEnvironment(svc)).map(([k, v]) => [k, resolve(v)]));

const commandOf = (svc: Service): string[] =>
  Array.isArray(svc.command) ? svc.command : (svc.command ?? '').split(/\s+/).filter(Boolean);

/** Services built from this repository's Dockerfile: ours. */
function builtFromOurDockerfile(svc: Service): boolean {
  if (svc.build === undefined) return false;
  const build = typeof svc.build === 'string' ? { context: svc.build } : svc.build;
  const context = path.resolve(ROOT, build.context ?? '.');
  return context === ROOT && path.resolve(context, build.dockerfile ?? 'Dockerfile') === path.join(ROOT, 'Dockerfile');
}

const ours = Object.entries(services).filter(([, svc]) => builtFromOurDockerfile(svc));
const find = (script: string) => {
  const hits = ours.filter(([, svc]) => commandOf(svc).join(' ') === `node ${script}`);
  if (hits.length !== 1)
    throw new Error(
      `expected exactly one service built from the Dockerfile running ` +
        `node ${script}, found ${hits.map(([n]) => n).join(', ') || 'none'}`,
    );
  return hits[0]!;
};
const [apiName, api] = find('dist/src/server.js');
const [workerName, worker] = find('dist/src/worker.js');

const byImage = (prefix: string) => {
  const hits = Object.entries(services).filter(([, svc]) => svc.image?.startsWith(prefix));
  if (hits.length !== 1) throw new Error(`expected exactly one service with image ${prefix}*, found ${hits.length}`);
  return hits[0]!;
};

const dependsOn = (svc: Service): Record<string, string | undefined> =>
  Array.isArray(svc.depends_on)
    ? Object.fromEntries(svc.depends_on.map((n) => [n, 'service_started']))
    : Object.fromEntries(Object.entries(svc.depends_on ?? {}).map(([n, d]) => [n, d.condition ?? 'service_started']));

describe('interpolation resolver', () => {
  const env = { SET: 'value', EMPTY: '' };
  const req = (name: string) => `<${name}>`;
  it.each([
    ['$$HOME', '$HOME'],
    ['${SET}', 'value'],
    ['$SET/x', 'value/x'],
    ['${UNSET}', ''],
    ['${UNSET:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${EMPTY-fallback}', ''],
    ['${SET:-fallback}', 'value'],
    ['${UNSET:?set it}', '<UNSET>'],
    ['${EMPTY:?set it}', '<EMPTY>'],
    ['${EMPTY?set it}', ''],
    ['${SET:?set it}', 'value'],
    ['${SET:+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['a-${SET}-$${LITERAL}-${UNSET:-d}', 'a-value-${LITERAL}-d'],
  ])('%s -> %s', (input, expected) => {
    expect(interpolate(input, env, req)).toBe(expected);
  });

  it('rejects nested interpolation instead of misreading it', () => {
    expect(() => interpolate('${A:-${B}}', env, req)).toThrow(/unsupported/);
  });
});

describe('docker-compose.yml', () => {
  const known = new Set(Object.keys(ConfigSchema.shape));

  it('builds api and worker from this Dockerfile, one image, and nothing else', () => {
    expect(ours.map(([n]) => n).sort()).toEqual([apiName, workerName].sort());
    expect(api.image).toBeDefined();
    expect(api.image).toBe(worker.image);
  });

  it.each([
    ['api', api],
    ['worker', worker],
  ])('%s sets only variables ConfigSchema knows, and no env_file', (_name, svc) => {
    expect(svc.env_file).toBeUndefined();
    const unknown = Object.keys(rawEnvironment(svc)).filter((k) => !known.has(k));
    expect(unknown).toEqual([]);
  });

  it.each([
    ['api', api],
    ['worker', worker],
  ])('%s environment alone passes loadConfig', (_name, svc) => {
    expect(() => loadConfig(resolvedEnvironment(svc))).not.toThrow();
  });

  it('api and worker environments together pass loadConfig', () => {
    const config = loadConfig({ ...resolvedEnvironment(worker), ...resolvedEnvironment(api) });
    expect(config.MONGODB_URI).toMatch(/^mongodb:\/\//);
  });

  it('gives OPERATOR_SECRETS_KEY (required) to API and worker, the break-glass ADMIN_TOKEN to the API only', () => {
    // The worker checks the codes that Web UI decisions carry against the operators' sealed secrets.
    for (const svc of [api, worker])
      expect(rawEnvironment(svc).OPERATOR_SECRETS_KEY).toMatch(/^\$\{OPERATOR_SECRETS_KEY:\?[^}]+\}$/);
    expect(rawEnvironment(api).ADMIN_TOKEN).toBe('${ADMIN_TOKEN:-}');
    expect(rawEnvironment(worker).ADMIN_TOKEN).toBeUndefined();
  });

  it('api and worker agree on Temporal and MongoDB', () => {
    const a = loadConfig(resolvedEnvironment(api));
    const w = loadConfig(resolvedEnvironment(worker));
    for (const key of [
      'TEMPORAL_TASK_QUEUE',
      'MONGODB_URI',
      'MONGODB_DB',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
    ] as const) {
      expect({ key, value: w[key] }).toEqual({ key, value: a[key] });
    }
  });

  it('points TEMPORAL_ADDRESS at the Temporal server service', () => {
    const [temporalName] = byImage('temporalio/auto-setup:');
    expect(loadConfig(resolvedEnvironment(api)).TEMPORAL_ADDRESS).toBe(`${temporalName}:7233`);
  });

  it('points MONGODB_URI at the mongo service with its replica set name', () => {
    const [mongoName, mongo] = byImage('mongo:');
    const uri = new URL(loadConfig(resolvedEnvironment(api)).MONGODB_URI);
    expect(uri.host).toBe(`${mongoName}:27017`);
    const args = commandOf(mongo);
    const replSet = args[args.indexOf('--replSet') + 1];
    expect(args).toContain('--replSet');
    expect(uri.searchParams.get('replicaSet')).toBe(replSet);
    // The healthcheck initiates the set with the same name and the host the apps use.
    const check = JSON.stringify(mongo.healthcheck?.test ?? '');
    expect(check).toContain('rs.initiate');
    expect(check).toContain(`_id: '${replSet}'`);
    expect(check).toContain(`host: '${mongoName}:27017'`);
  });

  it('registers every search attribute the workflows use, with its type, in the namespace the apps use', () => {
    const [setupName, setup] = byImage('temporalio/admin-tools:');
    const setupEnv = resolvedEnvironment(setup);
    const script = resolve(
      [setup.entrypoint, setup.command]
        .flat()
        .filter((x): x is string => typeof x === 'string')
        .join('\n'),
    ).replace(/\\\n/g, ' ');
    const creates = script
      .split('\n')
      .filter((line) => /\btemporal\s+operator\s+search-attribute\s+create\b/.test(line));
    expect(creates.length).toBeGreaterThan(0);

    const registered: Record<string, string> = {};
    const namespaces = new Set<string>();
    for (const line of creates) {
      const tokens = line
        .trim()
        .split(/\s+/)
        .map((t) => t.replace(/^"(.*)"$/, '$1'));
      const flag = (i: number, name: string) =>
        tokens[i] === `--${name}`
          ? tokens[i + 1]
          : tokens[i]?.startsWith(`--${name}=`)
            ? tokens[i]!.slice(name.length + 3)
            : undefined;
      const names: string[] = [];
      const types: string[] = [];
      tokens.forEach((_, i) => {
        const n = flag(i, 'name');
        const t = flag(i, 'type');
        const ns = flag(i, 'namespace') ?? (tokens[i] === '-n' ? tokens[i + 1] : undefined);
        if (n) names.push(n);
        if (t) types.push(t);
        if (ns)
          namespaces.add(
            interpolate(ns, setupEnv, () => {
              throw new Error(`${setupName}: namespace variable not set`);
            }),
          );
      });
      expect(types).toHaveLength(names.length);
      names.forEach((n, i) => (registered[n] = types[i]!));
    }
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES))
      expect({ name, type: registered[name] }).toEqual({ name, type });

    const appNamespace = loadConfig(resolvedEnvironment(api)).TEMPORAL_NAMESPACE;
    // Without --namespace the CLI uses $TEMPORAL_NAMESPACE, else "default".
    const effective = namespaces.size ? [...namespaces] : [setupEnv.TEMPORAL_NAMESPACE ?? 'default'];
    expect(effective).toEqual([appNamespace]);
    expect(setupEnv.TEMPORAL_ADDRESS).toBe(loadConfig(resolvedEnvironment(api)).TEMPORAL_ADDRESS);
    // auto-setup must create that same namespace.
    const [, temporal] = byImage('temporalio/auto-setup:');
    expect(resolvedEnvironment(temporal).DEFAULT_NAMESPACE ?? 'default').toBe(appNamespace);
  });

  it('starts api and worker only after MongoDB and Temporal are healthy and the search attributes exist', () => {
    const [mongoName] = byImage('mongo:');
    const [temporalName, temporal] = byImage('temporalio/auto-setup:');
    const [setupName, setup] = byImage('temporalio/admin-tools:');
    for (const svc of [api, worker]) {
      expect(dependsOn(svc)).toEqual(
        expect.objectContaining({
          [mongoName]: 'service_healthy',
          [temporalName]: 'service_healthy',
          [setupName]: 'service_completed_successfully',
        }),
      );
    }
    expect(dependsOn(setup)).toEqual(expect.objectContaining({ [temporalName]: 'service_healthy' }));
    expect(temporal.healthcheck?.test).toBeDefined();
    expect(api.healthcheck?.test).toBeDefined();
    expect(JSON.stringify(api.healthcheck?.test)).toContain('/readyz');
  });

  it('pins every third-party image to a version tag', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (builtFromOurDockerfile(svc)) continue;
      expect({ name, image: svc.image }).toEqual({
        name,
        image: expect.stringMatching(/^[^:\s]+:(?!latest$)[\w][\w.-]*$/),
      });
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const stages = dockerfile.split(/^FROM\s+/m).slice(1);
  const runtime = stages.at(-1) ?? '';

  it('is multi-stage and the runtime stage has production dependencies and dist/ only', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/npm run build/);
    expect(runtime).toMatch(/COPY --from=\S+ \/app\/dist \.\/dist/);
    expect(runtime).not.toMatch(/COPY (src|workflows|activities) /);
  });

  it('runs in production mode, so the API refuses sandbox integrations unless compose allows them', () => {
    const env = Object.fromEntries([...runtime.matchAll(/^ENV\s+([A-Z_]+)=(\S+)/gm)].map((m) => [m[1]!, m[2]!]));
    expect(env.NODE_ENV).toBe('production');
    expect(loadConfig({ ...env, ...resolvedEnvironment(api) }).ALLOW_SANDBOX_INTEGRATIONS).toBe(false);
  });

  it('runs as a non-root user', () => {
    const users = [...runtime.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
  });
});
