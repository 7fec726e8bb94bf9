import input from '@inquirer/input';
import password from '@inquirer/password';
import select from '@inquirer/select';
import {
  type Credential,
  currentWhere,
  envName,
  type Field,
  localConfigPath,
  mask,
  readConfig,
  resolveCredentials,
  updateConfig,
  userConfigPath,
} from '../config/credentials.ts';
import { UsageError } from '../env.ts';
import { AuthError, call, typedClient, USER_AGENT } from '../online/client.ts';
import { createOutput } from '../output.ts';

export interface InteractiveFlags {
  json?: boolean;
  profile?: string;
  local?: boolean;
}

type How = 'password' | 'link' | 'session' | 'api_key';

/** Why a URL will not do, or null when it will. */
export function urlProblem(value: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(value.trim());
  } catch {
    return 'not a URL (e.g. https://auth.example.com)';
  }
  return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? null : 'must be http:// or https://';
}

const TOKEN_PROBLEM: Record<Exclude<How, 'password' | 'link'>, (v: string) => string | true> = {
  session: (v) =>
    v.trim().length === 0
      ? 'paste the token'
      : v.trim().startsWith('kl_key_')
        ? 'that is an API key: go back (Ctrl-C) and choose the API key'
        : true,
  api_key: (v) =>
    v.trim().length === 0
      ? 'paste the key'
      : v.trim().startsWith('kl_ses_')
        ? 'that is a session token: go back (Ctrl-C) and choose the session token'
        : true,
};

interface TokenBody {
  access_token?: string;
  expires_at?: string;
  status?: string;
  error?: string;
}

/** A POST to the REST API (its sign-ins answer with a bearer token; tRPC's set a browser cookie). */
async function post(url: string, path: string, body: unknown): Promise<{ status: number; body: TokenBody }> {
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`cannot reach the server at ${url}: ${(error as Error).message}`, { cause: error });
  }
  return { status: res.status, body: (await res.json().catch(() => ({}))) as TokenBody };
}

function tokenOf(res: { status: number; body: TokenBody }, refused: string): { token: string; expiresAt: string } {
  if (res.status === 401) throw new AuthError(refused);
  if (res.status >= 300 || !res.body.access_token) {
    throw new Error(`sign-in failed: ${res.body.error ?? `HTTP ${res.status}`}`);
  }
  return { token: res.body.access_token, expiresAt: res.body.expires_at ?? '' };
}

/** The code (and the address it was sent to) from a pasted sign-in link, or a bare code. */
export function linkCode(pasted: string, email: string): { email: string; code: string } {
  const text = pasted.trim();
  try {
    const link = new URL(text);
    const code = link.searchParams.get('code');
    if (code) return { email: link.searchParams.get('email') ?? email, code };
  } catch {
    // Not a URL: the code alone.
  }
  return { email, code: text };
}

/**
 * `keyledger auth` on a terminal: asks for the server, a way in (password sign-in, or a pasted session token or API
 * key, typed masked), validates the credential against the server at once, and only then saves it (mode 0600).
 * Questions go to stderr, so stdout carries only the result (and --json stays parseable).
 */
export async function interactiveAuth(flags: InteractiveFlags): Promise<void> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new UsageError(
      '`keyledger auth` asks its questions on a terminal; in a script use `keyledger auth set --url … --token -` (or --session-token -)',
    );
  }
  const out = createOutput(Boolean(flags.json));
  const profile = flags.profile ?? 'default';
  const where = currentWhere();
  const before = resolveCredentials(where, profile);
  const context = { output: process.stderr };
  try {
    const url = (
      await input(
        {
          message: 'Server URL',
          default: before.url.value,
          validate: (v) => urlProblem(v) ?? true,
        },
        context,
      )
    )
      .trim()
      .replace(/\/+$/, '');
    const how = await select<How>(
      {
        message: 'How do you sign in?',
        choices: [
          { name: 'Email and password (a session)', value: 'password' },
          { name: 'Email me a sign-in link (a session)', value: 'link' },
          { name: 'Paste a session token (kl_ses_…)', value: 'session' },
          { name: 'Paste an API key (kl_key_…)', value: 'api_key' },
        ],
      },
      context,
    );
    let value: string;
    let expiresAt: string | null = null;
    if (how === 'password') {
      const email = await input(
        { message: 'Email', validate: (v) => /^[^\s@]+@[^\s@]+$/.test(v.trim()) || 'an email address' },
        context,
      );
      const secret = await password({ message: 'Password', mask: '*', validate: (v) => v.length > 0 }, context);
      const signedIn = tokenOf(
        await post(url, '/v1/auth/pw/signin', { email: email.trim(), password: secret }),
        'sign-in refused: wrong email or password, or the account is disabled',
      );
      value = signedIn.token;
      expiresAt = signedIn.expiresAt || null;
    } else if (how === 'link') {
      const email = (
        await input(
          { message: 'Email', validate: (v) => /^[^\s@]+@[^\s@]+$/.test(v.trim()) || 'an email address' },
          context,
        )
      ).trim();
      const sent = await post(url, '/v1/auth/magic-link', { email });
      if (sent.status >= 300) throw new Error(`could not send a link: ${sent.body.error ?? `HTTP ${sent.status}`}`);
      process.stderr.write(`A sign-in link is on its way to ${email} (if the address may sign in).\n`);
      const pasted = await password(
        { message: 'Paste the link (or its code)', mask: '*', validate: (v) => v.trim().length > 0 },
        context,
      );
      const signedIn = tokenOf(
        await post(url, '/v1/auth/magic-link/verify', linkCode(pasted, email)),
        'sign-in refused: the link is invalid, used or expired; ask for a new one',
      );
      value = signedIn.token;
      expiresAt = signedIn.expiresAt || null;
    } else {
      const label = how === 'api_key' ? 'API key' : 'Session token';
      value = (await password({ message: label, mask: '*', validate: TOKEN_PROBLEM[how] }, context)).trim();
    }

    const field: Exclude<Field, 'url'> = how === 'api_key' ? 'token' : 'session_token';
    const path = flags.local ? localConfigPath(where) : userConfigPath(where);
    const credential: Credential = {
      kind: how === 'api_key' ? 'api_key' : 'session',
      field,
      value,
      source: flags.local ? 'local' : 'user',
      path,
    };
    // Validated before anything is written: a refused credential is exit 3 and leaves the file as it was.
    const me = await call({ credential }, () => typedClient(url, value).auth.me.query());

    const other: Exclude<Field, 'url'> = field === 'token' ? 'session_token' : 'token';
    const replaced = Boolean(readConfig(path, () => {})?.profiles?.[profile]?.[other]);
    // One credential per profile and file: an API key left beside a new session would still be the one sent.
    updateConfig(path, profile, { url, [field]: value, [other]: null });

    const what = how === 'api_key' ? 'API key' : 'session token';
    const shadowed = (['token', 'session_token'] as const).find((f) => where.env[envName(f)]);
    const notes = [
      replaced ? `replaced the ${other === 'token' ? 'API key' : 'session token'} saved there before` : null,
      shadowed ? `note: ${envName(shadowed)} is set in this environment and is used before the file` : null,
    ].filter((n): n is string => n !== null);
    out.result(
      {
        ok: true,
        path,
        profile,
        url,
        credential: { kind: credential.kind, masked: mask(value) },
        expires_at: expiresAt,
        user: { id: me.id, email: me.email, role: me.role },
        notes,
      },
      [
        `signed in as ${me.email ?? me.id} (${me.role}) at ${url}`,
        `saved the ${what} ${mask(value)} to ${path} (profile ${profile})`,
        ...notes,
      ].join('\n'),
    );
  } catch (error) {
    // Ctrl-C or Ctrl-D at a question.
    if (error instanceof Error && (error.name === 'ExitPromptError' || error.name === 'AbortPromptError')) {
      throw new Error('cancelled: nothing was saved');
    }
    throw error;
  }
}
