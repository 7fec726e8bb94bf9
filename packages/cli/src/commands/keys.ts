import type { Command } from 'commander';
import { UsageError } from '../env.ts';
import { call, connect, type OnlineFlags, onlineOptions } from '../online/client.ts';
import { table } from '../online/table.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function seconds(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--grace: not a number of seconds: ${value}`);
  return Number(value);
}

interface KeyRow {
  id: string;
  name: string | null;
  start: string;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at?: string | null;
}

const keyTable = (keys: readonly KeyRow[]) =>
  table(
    ['ID', 'NAME', 'START', 'SCOPES', 'CREATED', 'EXPIRES', 'LAST USED'],
    keys.map((k) => [k.id, k.name, `${k.start}…`, k.scopes.join(','), k.created_at, k.expires_at, k.last_used_at]),
  );

/** The one place a key's secret is printed: right after it was made. */
const shownOnce = (key: KeyRow & { key: string }) =>
  `${keyTable([key])}\n\nkey: ${key.key}\nThis is the only time the key is shown: store it now.`;

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('your API keys: create, list, rotate, revoke');

  onlineOptions(keys.command('create').description('make an API key (its secret is shown once)'))
    .option('--name <name>', 'a label')
    .option('--scope <scope>', 'a scope (repeat for more; default: all of yours)', collect)
    .option('--expires <iso>', 'expiry, an ISO 8601 time with offset, e.g. 2027-01-01T00:00:00Z')
    .action(async (flags: OnlineFlags & { name?: string; scope?: string[]; expires?: string }) => {
      if (flags.expires !== undefined && Number.isNaN(Date.parse(flags.expires))) {
        throw new UsageError(`--expires: not an ISO 8601 time: ${flags.expires}`);
      }
      const online = connect(flags);
      const created = await call(online, () =>
        online.client.apiKeys.create.mutate({
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.scope ? { scopes: flags.scope as never } : {}),
          ...(flags.expires !== undefined ? { expires_at: new Date(flags.expires).toISOString() } : {}),
        }),
      );
      online.out.result(created, shownOnce(created));
    });

  onlineOptions(keys.command('list').description('your API keys (never their secrets)')).action(
    async (flags: OnlineFlags) => {
      const online = connect(flags);
      const all: KeyRow[] = [];
      let after: string | undefined;
      do {
        const page = await call(online, () =>
          online.client.apiKeys.list.query({ limit: 1000, ...(after ? { after } : {}) }),
        );
        all.push(...page.data);
        after = page.next_cursor ?? undefined;
      } while (after);
      online.out.result({ data: all }, keyTable(all));
    },
  );

  onlineOptions(keys.command('rotate').description('a successor key (shown once); the old one works for the grace'))
    .argument('<id>', 'the key to rotate')
    .option('--grace <seconds>', 'how long the old key keeps working (default 3600, 0 ends it now)', seconds)
    .action(async (id: string, flags: OnlineFlags & { grace?: number }) => {
      const online = connect(flags);
      const rotated = await call(online, () =>
        online.client.apiKeys.rotate.mutate({
          id,
          ...(flags.grace !== undefined ? { grace_seconds: flags.grace } : {}),
        }),
      );
      online.out.result({ ...rotated, rotated_from: id }, `rotated ${id}\n${shownOnce(rotated)}`);
    });

  onlineOptions(keys.command('revoke').description('revoke a key at once'))
    .argument('<id>', 'the key to revoke')
    .action(async (id: string, flags: OnlineFlags) => {
      const online = connect(flags);
      await call(online, () => online.client.apiKeys.revoke.mutate({ id }));
      online.out.result({ ok: true, revoked: id }, `revoked ${id}`);
    });
}
