import type { Command } from 'commander';
import { UsageError } from '../env.ts';
import { call, connect, type OnlineFlags, onlineOptions } from '../online/client.ts';
import { table } from '../online/table.ts';
import { registerUsersCreate } from './users-create.ts';

interface UserRow {
  id: string;
  email: string;
  name: string | null;
  role: string;
  disabled: boolean;
  email_verified: boolean;
  created_at: string;
}

const userTable = (users: readonly UserRow[]) =>
  table(
    ['ID', 'EMAIL', 'NAME', 'ROLE', 'STATUS', 'CREATED'],
    users.map((u) => [u.id, u.email, u.name, u.role, u.disabled ? 'disabled' : 'active', u.created_at]),
  );

export function registerUsers(program: Command): void {
  const users = program
    .command('users')
    .description('user administration (admins): list, invite, role, disable, enable; create (offline)');
  registerUsersCreate(users);

  onlineOptions(users.command('list').description('users, optionally matching a query'))
    .option('--query <q>', 'match on email or name')
    .action(async (flags: OnlineFlags & { query?: string }) => {
      const online = connect(flags);
      const all: UserRow[] = [];
      let after: string | undefined;
      do {
        const page = await call(online, () =>
          online.client.users.list.query({
            limit: 1000,
            ...(flags.query ? { query: flags.query } : {}),
            ...(after ? { after } : {}),
          }),
        );
        all.push(...page.data);
        after = page.next_cursor ?? undefined;
      } while (after);
      online.out.result({ data: all }, userTable(all));
    });

  onlineOptions(users.command('invite').description('register a user by email (a member unless --admin)'))
    .argument('<email>', 'their email address')
    .option('--admin', 'make them an admin')
    .option('--name <name>', 'their name')
    .action(async (email: string, flags: OnlineFlags & { admin?: boolean; name?: string }) => {
      const online = connect(flags);
      const user = await call(online, () =>
        online.client.users.create.mutate({
          email,
          role: flags.admin ? 'admin' : 'member',
          ...(flags.name ? { name: flags.name } : {}),
        }),
      );
      online.out.result(user, userTable([user]));
    });

  onlineOptions(users.command('role').description("set a user's role"))
    .argument('<id>', 'the user')
    .argument('<role>', 'admin or member')
    .action(async (id: string, role: string, flags: OnlineFlags) => {
      if (role !== 'admin' && role !== 'member') throw new UsageError(`role: must be admin or member, not ${role}`);
      const online = connect(flags);
      const user = await call(online, () => online.client.users.update.mutate({ id, role }));
      online.out.result(user, userTable([user]));
    });

  for (const [name, disabled, text] of [
    ['disable', true, 'disable a user (their sessions and keys are revoked)'],
    ['enable', false, 'enable a disabled user'],
  ] as const) {
    onlineOptions(users.command(name).description(text))
      .argument('<id>', 'the user')
      .action(async (id: string, flags: OnlineFlags) => {
        const online = connect(flags);
        const user = await call(online, () => online.client.users.update.mutate({ id, disabled }));
        online.out.result(user, userTable([user]));
      });
  }
}
