import fs from 'node:fs';
import path from 'node:path';

export const SERVER_CONFIG_TEMPLATE = path.join(__dirname, 'temporal-postgres.yaml');
export const DYNAMIC_CONFIG = path.join(__dirname, 'temporal-dynamic.yaml');

/** Everything the template leaves open: where PostgreSQL is, and the server's ports (fixed for a run, so a restarted
 * server is found where the clients left it). */
export interface ServerConfigValues {
  PG_PORT: number;
  PG_USER: string;
  PG_PASSWORD: string;
  FRONTEND_PORT: number;
  FRONTEND_HTTP_PORT: number;
  FRONTEND_MEMBERSHIP_PORT: number;
  HISTORY_PORT: number;
  HISTORY_MEMBERSHIP_PORT: number;
  MATCHING_PORT: number;
  MATCHING_MEMBERSHIP_PORT: number;
  WORKER_PORT: number;
  WORKER_MEMBERSHIP_PORT: number;
  DYNAMIC_CONFIG_FILE: string;
}

/** The template with every `${NAME}` filled in; a name without a value, or a value never used, is an error. */
export function renderServerConfig(
  values: ServerConfigValues,
  template = fs.readFileSync(SERVER_CONFIG_TEMPLATE, 'utf8'),
) {
  const used = new Set<string>();
  const rendered = template.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
    const value = (values as unknown as Record<string, unknown>)[name];
    if (value === undefined) throw new Error(`${SERVER_CONFIG_TEMPLATE}: no value for \${${name}}`);
    used.add(name);
    return String(value);
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length) throw new Error(`${SERVER_CONFIG_TEMPLATE}: never uses ${unused.join(', ')}`);
  return rendered;
}
