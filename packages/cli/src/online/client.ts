import type { AppRouter } from '@keyledger/server';
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client';
import type { Command } from 'commander';
import { EventSource } from 'eventsource';
import {
  type Credential,
  currentWhere,
  DEFAULT_PROFILE,
  type Resolved,
  resolveCredentials,
} from '../config/credentials.ts';
import { UsageError } from '../env.ts';
import { createOutput, type Output } from '../output.ts';

/** A refused or missing credential: exit 3. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
}

export type Client = ReturnType<typeof createTRPCClient<AppRouter>>;

export interface OnlineFlags {
  json?: boolean;
  profile?: string;
}

/** The flags every online command takes. */
export function onlineOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'machine-readable output')
    .option('--profile <name>', 'the credentials profile to use', DEFAULT_PROFILE);
}

export const NO_CREDENTIAL =
  'no credential: set KEYLEDGER_TOKEN (an API key) or KEYLEDGER_SESSION_TOKEN, or run `keyledger auth set --token …` (or `--session-token …`)';

export const USER_AGENT = 'keyledger-cli';

/**
 * Queries and mutations over plain HTTP; subscriptions (the audit tail) over SSE. Node 20 has no EventSource, so the
 * `eventsource` package supplies one whose fetch sends the credential as a header, never in the URL.
 */
export function typedClient(url: string, token: string): Client {
  const endpoint = `${url.replace(/\/+$/, '')}/trpc`;
  const headers = { authorization: `Bearer ${token}`, 'user-agent': USER_AGENT };
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: endpoint,
          EventSource,
          eventSourceOptions: {
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, ...headers } }),
          },
        }),
        false: httpLink({ url: endpoint, headers }),
      }),
    ],
  });
}

export interface Online {
  readonly out: Output;
  readonly resolved: Resolved;
  readonly credential: Credential;
  readonly client: Client;
}

/** Resolves the profile's credential (exit 3 when there is none) and a typed client that sends it. */
export function connect(flags: OnlineFlags): Online {
  const out = createOutput(Boolean(flags.json));
  const resolved = resolveCredentials(currentWhere(), flags.profile ?? DEFAULT_PROFILE);
  const credential = resolved.primary;
  if (!credential) {
    const suffix =
      resolved.profile === DEFAULT_PROFILE ? '' : ` (profile ${resolved.profile}: add --profile ${resolved.profile})`;
    throw new AuthError(`${NO_CREDENTIAL}${suffix}`);
  }
  return { out, resolved, credential, client: typedClient(resolved.url.value, credential.value) };
}

/** The HTTP status behind a failed tRPC call, when there was a response. */
export function statusOf(error: unknown): number | undefined {
  if (!(error instanceof TRPCClientError)) return undefined;
  const e = error as TRPCClientError<AppRouter>;
  return e.data?.httpStatus ?? (e.meta?.response as Response | undefined)?.status;
}

/** Runs a call; a 401/403 becomes an AuthError (exit 3), anything else a plain error with the server's message. */
export async function call<T>(online: Pick<Online, 'credential'>, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const status = statusOf(error);
    const message = error instanceof Error ? error.message : String(error);
    if (status === 401) {
      throw new AuthError(
        `the server refused the ${describe(online.credential)} (${message}); set a valid one with \`keyledger auth set\``,
      );
    }
    if (status === 403) throw new AuthError(`forbidden with the ${describe(online.credential)}: ${message}`);
    // The server names the field it refused: a usage mistake (exit 2), like a flag refused here.
    if (status === 400) throw new UsageError(message);
    if (error instanceof TRPCClientError && status === undefined) {
      throw new Error(`cannot reach the server: ${message}`);
    }
    throw new Error(message);
  }
}

export function describe(credential: Credential): string {
  const what = credential.kind === 'api_key' ? 'API key' : 'session token';
  return `${what} from ${credential.source === 'env' ? 'the environment' : credential.path}`;
}
