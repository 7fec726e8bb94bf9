import type { Command } from 'commander';
import { UsageError } from '../env.ts';
import { call, connect, type OnlineFlags, onlineOptions } from '../online/client.ts';
import { table } from '../online/table.ts';

export function registerSessions(program: Command): void {
  const sessions = program.command('sessions').description('your signed-in devices: list, revoke');

  onlineOptions(sessions.command('list').description('your live sessions (the current one marked *)')).action(
    async (flags: OnlineFlags) => {
      const online = connect(flags);
      const page = await call(online, () => online.client.sessions.list.query());
      online.out.result(
        { data: page.data },
        table(
          ['ID', 'CURRENT', 'METHOD', 'IP', 'USER AGENT', 'CREATED', 'LAST SEEN', 'EXPIRES'],
          page.data.map((s) => [
            s.id,
            s.current ? '*' : '',
            s.method,
            s.ip,
            s.user_agent,
            s.created_at,
            s.last_seen_at,
            s.expires_at,
          ]),
        ),
      );
    },
  );

  onlineOptions(sessions.command('revoke').description('sign out one session, or every other one with --others'))
    .argument('[id]', 'the session to revoke')
    .option('--others', 'revoke every session but the current one')
    .action(async (id: string | undefined, flags: OnlineFlags & { others?: boolean }) => {
      if (Boolean(id) === Boolean(flags.others)) throw new UsageError('give a session ID or --others (not both)');
      const online = connect(flags);
      if (flags.others) {
        const { revoked } = await call(online, () => online.client.sessions.revokeOthers.mutate());
        online.out.result({ revoked }, `revoked ${revoked} other session${revoked === 1 ? '' : 's'}`);
        return;
      }
      const sessionId = id as string;
      await call(online, () => online.client.sessions.revoke.mutate({ id: sessionId }));
      online.out.result({ ok: true, revoked: sessionId }, `revoked ${sessionId}`);
    });
}
