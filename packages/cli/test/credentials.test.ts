import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_URL,
  localConfigPath,
  mask,
  resolveCredentials,
  updateConfig,
  userConfigPath,
  type Where,
} from '../src/config/credentials.ts';

let root: string;
let where: Where;
let warnings: string[];
const warn = (m: string) => warnings.push(m);

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'keyledger-cred-'));
  mkdirSync(join(root, 'project'));
  where = { env: { XDG_CONFIG_HOME: join(root, 'xdg') }, cwd: join(root, 'project'), home: join(root, 'home') };
  warnings = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('credential resolution', () => {
  it('finds the user file under XDG_CONFIG_HOME, else ~/.config', () => {
    expect(userConfigPath(where)).toBe(join(root, 'xdg', 'keyledger', 'config.toml'));
    expect(userConfigPath({ ...where, env: {} })).toBe(join(root, 'home', '.config', 'keyledger', 'config.toml'));
    expect(localConfigPath(where)).toBe(join(root, 'project', '.keyledger.toml'));
  });

  it('takes the environment over ./.keyledger.toml over the user file, field by field', () => {
    expect(resolveCredentials(where, 'default', warn)).toMatchObject({
      url: { value: DEFAULT_URL, source: 'default' },
      primary: undefined,
    });
    updateConfig(
      userConfigPath(where),
      'default',
      { url: 'https://user.example', token: 'kl_key_user_0123456789' },
      warn,
    );
    let r = resolveCredentials(where, 'default', warn);
    expect(r.url).toMatchObject({ value: 'https://user.example', source: 'user' });
    expect(r.primary).toMatchObject({ kind: 'api_key', source: 'user', value: 'kl_key_user_0123456789' });

    updateConfig(localConfigPath(where), 'default', { token: 'kl_key_local_0123456789' }, warn);
    r = resolveCredentials(where, 'default', warn);
    expect(r.url.source).toBe('user');
    expect(r.primary).toMatchObject({
      source: 'local',
      value: 'kl_key_local_0123456789',
      path: localConfigPath(where),
    });

    r = resolveCredentials(
      {
        ...where,
        env: { ...where.env, KEYLEDGER_SESSION_TOKEN: 'kl_ses_env_0123456789', KEYLEDGER_URL: 'https://env.example' },
      },
      'default',
      warn,
    );
    expect(r.url).toMatchObject({ value: 'https://env.example', source: 'env' });
    // The highest source with any credential wins, even a session token over a file's API key.
    expect(r.primary).toMatchObject({ kind: 'session', field: 'session_token', source: 'env' });
    expect(r.token).toMatchObject({ source: 'local' });
    expect(warnings).toEqual([]);
  });

  it('prefers the API key to a session token in the same source', () => {
    updateConfig(userConfigPath(where), 'default', {
      session_token: 'kl_ses_0123456789abc',
      token: 'kl_key_0123456789abc',
    });
    expect(resolveCredentials(where, 'default', warn).primary).toMatchObject({ kind: 'api_key', field: 'token' });
  });

  it('selects [profiles.<name>] and leaves the other profiles alone when writing', () => {
    const path = userConfigPath(where);
    updateConfig(path, 'default', { token: 'kl_key_default_000000' }, warn);
    updateConfig(path, 'staging', { url: 'https://staging.example', token: 'kl_key_staging_000000' }, warn);
    expect(resolveCredentials(where, 'staging', warn)).toMatchObject({
      profile: 'staging',
      url: { value: 'https://staging.example' },
      primary: { value: 'kl_key_staging_000000' },
    });
    expect(resolveCredentials(where, 'default', warn).primary?.value).toBe('kl_key_default_000000');
    expect(resolveCredentials(where, 'nope', warn).primary).toBeUndefined();
    updateConfig(path, 'staging', { token: null }, warn);
    expect(resolveCredentials(where, 'staging', warn).primary).toBeUndefined();
    expect(resolveCredentials(where, 'default', warn).primary?.value).toBe('kl_key_default_000000');
    expect(readFileSync(path, 'utf8')).toContain('[profiles.staging]');
  });

  it('writes files 0600 in a 0700 directory, and re-tightens an open file on write', () => {
    const path = userConfigPath(where);
    updateConfig(path, 'default', { token: 'kl_key_0123456789abcdef' }, warn);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, 'xdg', 'keyledger')).mode & 0o777).toBe(0o700);
    chmodSync(path, 0o644);
    updateConfig(path, 'default', { url: 'https://x.example' }, () => {});
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('warns about a group- or world-readable file, without the secret in the warning', () => {
    const path = localConfigPath(where);
    writeFileSync(path, '[profiles.default]\ntoken = "kl_key_secret_0123456789"\n', { mode: 0o644 });
    chmodSync(path, 0o644);
    const r = resolveCredentials(where, 'default', warn);
    expect(r.primary?.value).toBe('kl_key_secret_0123456789');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(path);
    expect(warnings[0]).toContain('0644');
    expect(warnings[0]).not.toContain('kl_key_secret');
    warnings = [];
    chmodSync(path, 0o600);
    resolveCredentials(where, 'default', warn);
    expect(warnings).toEqual([]);
  });

  it('masks to at most the first 12 characters', () => {
    expect(mask('kl_key_AbCdEfGhIjKlMnOpQrStUv')).toBe('kl_key_AbCdE…');
    expect(mask('short')).toBe('sh…');
    expect(mask('kl_key_AbCdEfGhIjKlMnOpQrStUv')).not.toContain('fGh');
  });
});
