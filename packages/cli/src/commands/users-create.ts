import {
  assertPasswordAcceptable,
  buildInvitation,
  type CoreContext,
  catalogue,
  DomainError,
  type EventMeta,
  EventStore,
  hasAdmin,
  projections,
  registerUser,
  runCommand,
  SETUP_TOKEN_TTL_MS,
  systemClock,
  userDecider,
  userStream,
} from '@keyledger/core';
import type { Command } from 'commander';
import { offlineEnv, UsageError } from '../env.ts';
import { openOffline } from '../offline-db.ts';
import { USER_AGENT } from '../online/client.ts';
import { createOutput } from '../output.ts';
import { readStdin } from '../stdin.ts';

interface CreateFlags {
  email: string;
  name?: string;
  admin?: boolean;
  passwordStdin?: boolean;
  json?: boolean;
}

/** Who did it: the operator at the database, not a signed-in principal (there may be none yet). */
const CLI_META: EventMeta = {
  actor: { type: 'system', id: null },
  via: 'cli',
  ip: null,
  user_agent: USER_AGENT,
  request_id: null,
};

/**
 * `keyledger users create`: registers a user straight on the database, through core's registerUser (so
 * `user.registered` is appended in the projection's transaction), for bootstrapping without a running server.
 * Without --password-stdin the person gets a one-time sign-in link (docs/adr/0013-cli-offline-users.md).
 */
export function registerUsersCreate(users: Command): void {
  users
    .command('create')
    .description(
      'create a user offline, straight on the database (the first admin): prints a one-time sign-in link, or takes --password-stdin',
    )
    .requiredOption('--email <email>', 'their email address')
    .option('--name <name>', 'their name')
    .option('--admin', 'make them an admin')
    .option('--password-stdin', 'read their password from stdin instead of printing a sign-in link')
    .option('--json', 'machine-readable output')
    .action(async (flags: CreateFlags) => {
      const out = createOutput(Boolean(flags.json));
      const email = flags.email.trim();
      if (email.length > 320 || !/^[^\s@]+@[^\s@]+$/.test(email)) {
        throw new UsageError(`--email: not an email address: ${email}`);
      }
      const name = flags.name?.trim() || null;
      if (name !== null && name.length > 200) throw new UsageError('--name: at most 200 characters');
      let password: string | undefined;
      if (flags.passwordStdin) {
        password = await readStdin();
        if (!password) throw new UsageError('--password-stdin: nothing on stdin');
        try {
          assertPasswordAcceptable(password);
        } catch (error) {
          if (error instanceof DomainError) throw new UsageError(`--password-stdin: ${error.message}`);
          throw error;
        }
      }

      const env = offlineEnv();
      const handle = await openOffline(env);
      try {
        const core: CoreContext = {
          db: handle.db,
          store: new EventStore({ db: handle.db, catalogue, projections }),
          clock: systemClock,
        };
        const role = flags.admin ? 'admin' : 'member';
        // The catalogue's `bootstrap` is the first admin; anyone after that is registered by an administrator.
        const method = flags.admin && !(await hasAdmin(core)) ? 'bootstrap' : 'admin';
        const user = await registerUser(core, CLI_META, { email, name, role, method, password });

        let link: { url: string; expires_at: string } | null = null;
        if (password === undefined) {
          // An invitation as the server makes one (`user.invited` and a `magic_link.issued` for this user, in one
          // append), printed instead of mailed: at bootstrap there may be no mail set up yet. Only the code's
          // SHA-256 is stored; it works once, as long as the server's own setup link, and verifies the address.
          const invitation = buildInvitation(user.id, user.email, {
            publicUrl: env.publicUrl,
            invitedBy: 'keyledger users create',
            ip: null,
            now: core.clock.now(),
            ttlMs: SETUP_TOKEN_TTL_MS,
          });
          await runCommand(
            core,
            userStream(user.id),
            userDecider,
            { type: 'InviteUser', data: { userId: user.id, linkId: invitation.userEvent.data.link_id } },
            CLI_META,
            { also: async () => [invitation.link] },
          );
          link = { url: invitation.url, expires_at: invitation.expiresAt.toISOString() };
        }

        const summary = {
          id: user.id,
          email: user.email,
          name: user.name,
          role: user.role,
          method,
          password_set: password !== undefined,
          sign_in_link: link?.url ?? null,
          link_expires_at: link?.expires_at ?? null,
        };
        const human = [
          `created ${user.role} ${user.email} (${user.id})`,
          link
            ? `one-time sign-in link, valid until ${link.expires_at}; give it to ${user.email} only, it is not shown again:\n${link.url}`
            : `${user.email} signs in with the password given`,
        ].join('\n');
        out.result(summary, human);
      } finally {
        await handle.close();
      }
    });
}
