import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'smol-toml';

/**
 * Where the CLI's server URL and credentials come from, highest first: the environment (`KEYLEDGER_URL`,
 * `KEYLEDGER_TOKEN`, `KEYLEDGER_SESSION_TOKEN`), then `./.keyledger.toml`, then the user's config file
 * (`$XDG_CONFIG_HOME/keyledger/config.toml`, else `~/.config/keyledger/config.toml`). Files hold
 * `[profiles.<name>]` tables with `url`, `token` (an API key) and `session_token`.
 */
export type Source = 'env' | 'local' | 'user';
export type Field = 'url' | 'token' | 'session_token';

export const DEFAULT_PROFILE = 'default';
export const DEFAULT_URL = 'http://localhost:3000';
export const LOCAL_FILE = '.keyledger.toml';

export interface Where {
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
  readonly home: string;
}

export function currentWhere(): Where {
  return { env: process.env, cwd: process.cwd(), home: homedir() };
}

export function userConfigPath(where: Where): string {
  const xdg = where.env.XDG_CONFIG_HOME;
  const base = xdg && xdg.length > 0 ? xdg : join(where.home, '.config');
  return resolve(base, 'keyledger', 'config.toml');
}

export function localConfigPath(where: Where): string {
  return resolve(where.cwd, LOCAL_FILE);
}

export function pathOf(source: Exclude<Source, 'env'>, where: Where): string {
  return source === 'local' ? localConfigPath(where) : userConfigPath(where);
}

export interface Found {
  readonly value: string;
  readonly source: Source;
  /** The file it was read from (not for the environment). */
  readonly path?: string;
}

export interface Credential extends Found {
  readonly kind: 'api_key' | 'session';
  readonly field: 'token' | 'session_token';
}

export interface Resolved {
  readonly profile: string;
  readonly url: Found | { readonly value: string; readonly source: 'default' };
  readonly token: Found | undefined;
  readonly sessionToken: Found | undefined;
  /** The credential the CLI sends: the highest source holding one; in one source an API key before a session. */
  readonly primary: Credential | undefined;
}

type Profile = Partial<Record<Field, string>>;
type ConfigFile = { profiles?: Record<string, Profile> } & Record<string, unknown>;

const ENV_NAMES: Record<Field, string> = {
  url: 'KEYLEDGER_URL',
  token: 'KEYLEDGER_TOKEN',
  session_token: 'KEYLEDGER_SESSION_TOKEN',
};

/** True when group or others may read (or write) the file. */
export function tooOpen(mode: number): boolean {
  return (mode & 0o077) !== 0;
}

/** Reads a config file (undefined when missing), warning once when it is group- or world-readable. */
export function readConfig(path: string, warn: (message: string) => void): ConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const mode = statSync(path).mode & 0o777;
  if (tooOpen(mode)) {
    warn(
      `${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); it holds secrets: run chmod 600 ${path}`,
    );
  }
  try {
    return parse(text) as ConfigFile;
  } catch (error) {
    throw new ConfigError(`${path}: not valid TOML: ${error instanceof Error ? error.message.split('\n')[0] : error}`);
  }
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function profileOf(file: ConfigFile | undefined, profile: string): Profile {
  const table = file?.profiles?.[profile];
  if (!table || typeof table !== 'object') return {};
  const out: Profile = {};
  for (const field of ['url', 'token', 'session_token'] as const) {
    const v = table[field];
    if (typeof v === 'string' && v.length > 0) out[field] = v;
  }
  return out;
}

export function resolveCredentials(
  where: Where,
  profile: string = DEFAULT_PROFILE,
  warn: (message: string) => void = defaultWarn,
): Resolved {
  const envLayer: Profile = {};
  for (const field of ['url', 'token', 'session_token'] as const) {
    const v = where.env[ENV_NAMES[field]];
    if (v) envLayer[field] = v;
  }
  const localPath = localConfigPath(where);
  const userPath = userConfigPath(where);
  const layers: { source: Source; path?: string; values: Profile }[] = [
    { source: 'env', values: envLayer },
    { source: 'local', path: localPath, values: profileOf(readConfig(localPath, warn), profile) },
  ];
  // Run from the home config directory, the two files are one: read it once.
  if (userPath !== localPath) {
    layers.push({ source: 'user', path: userPath, values: profileOf(readConfig(userPath, warn), profile) });
  }
  const first = (field: Field): Found | undefined => {
    for (const layer of layers) {
      const value = layer.values[field];
      if (value) return { value, source: layer.source, ...(layer.path ? { path: layer.path } : {}) };
    }
    return undefined;
  };
  let primary: Credential | undefined;
  for (const layer of layers) {
    const field = layer.values.token ? 'token' : layer.values.session_token ? 'session_token' : undefined;
    if (!field) continue;
    primary = {
      kind: field === 'token' ? 'api_key' : 'session',
      field,
      value: layer.values[field] as string,
      source: layer.source,
      ...(layer.path ? { path: layer.path } : {}),
    };
    break;
  }
  return {
    profile,
    url: first('url') ?? { value: DEFAULT_URL, source: 'default' },
    token: first('token'),
    sessionToken: first('session_token'),
    primary,
  };
}

function defaultWarn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

/** Only the first 12 characters (fewer for a short secret), never the whole of it. */
export function mask(secret: string): string {
  const shown = Math.min(12, Math.floor(secret.length / 2));
  return `${secret.slice(0, shown)}…`;
}

/**
 * Sets (a string) or removes (null) fields of one profile in a config file. The file is written 0600 through a
 * temporary file in the same directory, the directory created 0700; other profiles and keys are kept.
 */
export function updateConfig(
  path: string,
  profile: string,
  changes: Partial<Record<Field, string | null>>,
  warn: (message: string) => void = defaultWarn,
): void {
  const file: ConfigFile = readConfig(path, warn) ?? {};
  const profiles: Record<string, Profile> = { ...(file.profiles ?? {}) };
  const table: Profile = { ...(profiles[profile] ?? {}) };
  for (const [field, value] of Object.entries(changes) as [Field, string | null | undefined][]) {
    if (value === undefined) continue;
    if (value === null) delete table[field];
    else table[field] = value;
  }
  profiles[profile] = table;
  const next = { ...file, profiles };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${stringify(next)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export const envName = (field: Field): string => ENV_NAMES[field];
