import type { Command } from 'commander';
import {
  type Credential,
  currentWhere,
  envName,
  type Field,
  type Found,
  localConfigPath,
  mask,
  resolveCredentials,
  updateConfig,
  userConfigPath,
} from '../config/credentials.ts';
import { UsageError } from '../env.ts';
import {
  AuthError,
  call,
  connect,
  describe,
  type OnlineFlags,
  onlineOptions,
  statusOf,
  typedClient,
} from '../online/client.ts';
import { createOutput } from '../output.ts';
import { readStdin } from '../stdin.ts';
import { type InteractiveFlags, interactiveAuth } from './auth-interactive.ts';

/** A secret from an argument, or from stdin for `-` (so it stays out of the shell history). */
async function secretArg(
  value: string | undefined,
  name: string,
  stdinUsed: { used: boolean },
): Promise<string | undefined> {
  if (value === undefined) return undefined;
  if (value !== '-') return value;
  if (stdinUsed.used) throw new UsageError(`only one of the secrets can be read from stdin (${name})`);
  stdinUsed.used = true;
  const secret = (await readStdin()).trim();
  if (!secret) throw new UsageError(`${name}: nothing on stdin`);
  return secret;
}

const shown = (found: Found | undefined) =>
  found ? { source: found.source, path: found.path ?? null, masked: mask(found.value) } : null;

function credentialJson(c: Credential | undefined) {
  return c ? { kind: c.kind, source: c.source, path: c.path ?? null, masked: mask(c.value) } : null;
}

export function registerAuth(program: Command): void {
  const auth = program
    .command('auth')
    .description(
      'server URL and credentials: on a terminal, `keyledger auth` alone asks and saves; set, status, check, logout',
    )
    .option('--local', 'save to ./.keyledger.toml instead of the user config file')
    .option('--json', 'machine-readable output')
    .option('--profile <name>', 'the profile to write', 'default')
    .action((flags: InteractiveFlags) => interactiveAuth(flags));

  auth
    .command('set')
    .description('save the server URL and a credential (`-` reads the secret from stdin)')
    .option('--url <url>', 'the server, e.g. https://auth.example.com')
    .option('--token <key>', 'an API key (kl_key_…), or - to read it from stdin')
    .option('--session-token <token>', 'a session token (kl_ses_…), or - to read it from stdin')
    .option('--local', 'write ./.keyledger.toml instead of the user config file')
    .option('--json', 'machine-readable output')
    .option('--profile <name>', 'the profile to write', 'default')
    .action(async (flags: OnlineFlags & { url?: string; token?: string; sessionToken?: string; local?: boolean }) => {
      const out = createOutput(Boolean(flags.json));
      const stdin = { used: false };
      const token = await secretArg(flags.token, '--token', stdin);
      const sessionToken = await secretArg(flags.sessionToken, '--session-token', stdin);
      if (flags.url === undefined && token === undefined && sessionToken === undefined) {
        throw new UsageError('nothing to set: give --url, --token or --session-token');
      }
      if (flags.url !== undefined) {
        let parsed: URL;
        try {
          parsed = new URL(flags.url);
        } catch {
          throw new UsageError(`--url: not a URL: ${flags.url}`);
        }
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
          throw new UsageError('--url: must be http:// or https://');
        }
      }
      const where = currentWhere();
      const path = flags.local ? localConfigPath(where) : userConfigPath(where);
      const profile = flags.profile ?? 'default';
      const changes: Partial<Record<Field, string>> = {};
      if (flags.url !== undefined) changes.url = flags.url.replace(/\/+$/, '');
      if (token !== undefined) changes.token = token;
      if (sessionToken !== undefined) changes.session_token = sessionToken;
      updateConfig(path, profile, changes);
      const saved = Object.keys(changes);
      out.result(
        {
          path,
          profile,
          saved,
          ...(token ? { token: mask(token) } : {}),
          ...(sessionToken ? { session_token: mask(sessionToken) } : {}),
        },
        `saved ${saved.join(', ')} to ${path} (profile ${profile})${token ? `\ntoken ${mask(token)}` : ''}${
          sessionToken ? `\nsession token ${mask(sessionToken)}` : ''
        }`,
      );
    });

  onlineOptions(
    auth.command('status').description('which credential is in use and where it came from (masked)'),
  ).action((flags: OnlineFlags) => {
    const out = createOutput(Boolean(flags.json));
    const r = resolveCredentials(currentWhere(), flags.profile);
    const value = {
      profile: r.profile,
      url: { value: r.url.value, source: r.url.source },
      credential: credentialJson(r.primary),
      token: shown(r.token),
      session_token: shown(r.sessionToken),
    };
    const human = [
      `profile:    ${r.profile}`,
      `url:        ${r.url.value} (${r.url.source})`,
      r.primary
        ? `credential: ${r.primary.kind === 'api_key' ? 'API key' : 'session token'} ${mask(r.primary.value)} (${
            r.primary.source === 'env' ? `env ${envName(r.primary.field)}` : `${r.primary.source} ${r.primary.path}`
          })`
        : 'credential: none (set KEYLEDGER_TOKEN or run `keyledger auth set --token …`)',
    ].join('\n');
    out.result(value, human);
  });

  onlineOptions(
    auth.command('check').description('validate the credential in use against the server (exit 3 when refused)'),
  ).action(async (flags: OnlineFlags) => {
    const online = connect(flags);
    const me = await call(online, () => online.client.auth.me.query());
    online.out.result(
      {
        ok: true,
        url: online.resolved.url.value,
        credential: credentialJson(online.credential),
        user: { id: me.id, email: me.email, role: me.role },
        method: me.auth.method,
        scopes: me.auth.scopes,
      },
      `ok: ${me.email ?? me.id} (${me.role}) by ${describe(online.credential)} at ${online.resolved.url.value}`,
    );
  });

  onlineOptions(
    auth.command('logout').description('remove the credential in use from its file (a session is signed out first)'),
  ).action(async (flags: OnlineFlags) => {
    const out = createOutput(Boolean(flags.json));
    const r = resolveCredentials(currentWhere(), flags.profile);
    const c = r.primary;
    if (!c) {
      out.result({ removed: null }, 'no credential saved: nothing to do');
      return;
    }
    if (c.source === 'env' || !c.path) {
      throw new Error(`the credential comes from the environment: unset ${envName(c.field)} instead`);
    }
    let signedOut = false;
    if (c.kind === 'session') {
      try {
        await typedClient(r.url.value, c.value).auth.signOut.mutate();
        signedOut = true;
      } catch (error) {
        // Already expired or revoked: nothing to sign out, the file is still cleaned.
        const status = statusOf(error);
        if (status !== 401 && status !== 403) {
          if (error instanceof AuthError) throw error;
          process.stderr.write(`warning: could not sign the session out on the server: ${(error as Error).message}\n`);
        }
      }
    }
    updateConfig(c.path, r.profile, { [c.field]: null });
    out.result(
      { removed: c.field, source: c.source, path: c.path, profile: r.profile, signed_out: signedOut },
      `removed the ${c.kind === 'api_key' ? 'API key' : 'session token'} from ${c.path} (profile ${r.profile})${
        signedOut ? '; the session is signed out' : ''
      }`,
    );
  });
}
