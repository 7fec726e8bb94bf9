import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Command, Option } from 'commander';
import { UsageError } from '../env.ts';
import {
  type AuditFilterFlags,
  type AuditFilters,
  auditFilters,
  filterOptions,
  filterParams,
} from '../online/audit-filters.ts';
import {
  AuthError,
  type Client,
  call,
  connect,
  describe,
  type OnlineFlags,
  onlineOptions,
  USER_AGENT,
} from '../online/client.ts';
import { table } from '../online/table.ts';

export type AuditEvent = Awaited<ReturnType<Client['audit']['query']['query']>>['data'][number];

const actorOf = (e: AuditEvent) => (e.meta.actor.id ? `${e.meta.actor.type}:${e.meta.actor.id}` : e.meta.actor.type);

const eventTable = (events: readonly AuditEvent[]) =>
  table(
    ['SEQ', 'TIME', 'TYPE', 'ACTOR', 'STREAM', 'IP'],
    events.map((e) => [String(e.seq), e.occurred_at, e.type, actorOf(e), e.stream, e.meta.ip]),
  );

/** One event as one line, for a stream whose column widths cannot be known in advance. */
const eventLine = (e: AuditEvent) =>
  [String(e.seq).padStart(6), e.occurred_at, e.type.padEnd(26), actorOf(e).padEnd(40), e.stream, e.meta.ip ?? '-']
    .join('  ')
    .trimEnd();

function positiveInt(flag: string, min: number, max: number) {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new UsageError(`${flag}: a whole number from ${min} to ${max}, not ${value}`);
    }
    return Number(value);
  };
}

interface QueryFlags extends OnlineFlags, AuditFilterFlags {
  after?: number;
  order: 'asc' | 'desc';
  limit: number;
  all?: boolean;
}

interface TailFlags extends OnlineFlags, AuditFilterFlags {
  follow?: boolean;
  lines: number;
}

interface ExportFlags extends OnlineFlags, AuditFilterFlags {
  format: 'jsonl' | 'csv';
  output?: string;
}

export function registerAuditOnline(audit: Command): void {
  filterOptions(
    onlineOptions(
      audit
        .command('query')
        .description('search the log (members see the events about themselves); one page, or every page with --all'),
    ),
  )
    .option(
      '--after <seq>',
      'start after this seq (the next_cursor of the previous page)',
      positiveInt('--after', 0, Number.MAX_SAFE_INTEGER),
    )
    .addOption(new Option('--order <order>', 'by seq').choices(['asc', 'desc']).default('asc'))
    .option('--limit <n>', 'events per page (1-1000)', positiveInt('--limit', 1, 1000), 50)
    .option('--all', 'follow next_cursor to the end')
    .action(async (flags: QueryFlags) => {
      const filters = auditFilters(flags);
      const online = connect(flags);
      const data: AuditEvent[] = [];
      let after = flags.after;
      let next: number | null = null;
      do {
        const page = await call(online, () =>
          online.client.audit.query.query({
            ...filters,
            order: flags.order,
            limit: flags.limit,
            ...(after !== undefined ? { after } : {}),
          }),
        );
        data.push(...page.data);
        next = page.next_cursor;
        after = next ?? undefined;
      } while (flags.all && next !== null);
      const more = next === null ? '' : `\nmore: add --after ${next} for the next page, or --all`;
      online.out.result({ data, next_cursor: next }, `${eventTable(data)}${more}`);
    });

  filterOptions(
    onlineOptions(
      audit
        .command('tail')
        .description(
          'the latest events; with -f, then every new one as it is committed, until Ctrl-C (--json: one JSON event per line)',
        ),
    ),
  )
    .option('-f, --follow', 'keep printing new events as they are committed')
    .option(
      '-n, --lines <n>',
      'how many of the latest events to print first (0-1000)',
      positiveInt('--lines', 0, 1000),
      10,
    )
    .action(async (flags: TailFlags) => {
      const filters = auditFilters(flags);
      const online = connect(flags);
      const print = (e: AuditEvent) => process.stdout.write(`${flags.json ? JSON.stringify(e) : eventLine(e)}\n`);
      // The newest events first (this also proves the credential before any stream is opened), shown oldest first.
      const page = await call(online, () =>
        online.client.audit.query.query({ ...filters, order: 'desc', limit: Math.max(1, flags.lines) }),
      );
      const latest = [...page.data].reverse();
      for (const e of latest.slice(latest.length - flags.lines)) print(e);
      if (!flags.follow) return;
      // Resume after the newest event this viewer could see (0 when none): events committed since are all delivered.
      await follow(online, filters, latest.at(-1)?.seq ?? 0, print);
    });

  filterOptions(
    onlineOptions(
      audit.command('export').description('stream the matching events as JSON Lines or CSV, to a file (-o) or stdout'),
    ),
  )
    .addOption(new Option('--format <format>', 'jsonl or csv').choices(['jsonl', 'csv']).makeOptionMandatory())
    .option('-o, --output <file>', 'write here (created 0600, replaced only when complete) instead of stdout')
    .action(async (flags: ExportFlags) => exportEvents(flags));
}

/**
 * Follows `audit.onEvent` (SSE) from seq `after` until Ctrl-C. The link reconnects on its own and resumes from the
 * last event id it saw, so a dropped connection loses nothing; a refused credential ends it with exit 3.
 */
async function follow(
  online: ReturnType<typeof connect>,
  filters: AuditFilters,
  after: number,
  print: (e: AuditEvent) => void,
): Promise<void> {
  await new Promise<void>((done, fail) => {
    let reconnecting = false;
    const stop = (error?: Error) => {
      subscription.unsubscribe();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (error) fail(error);
      else done();
    };
    const onSignal = () => stop();
    const subscription = online.client.audit.onEvent.subscribe(
      { ...filters, lastEventId: String(after) },
      {
        onData: (tracked) => print(tracked.data as AuditEvent),
        onError: (error) => stop(new Error(`the tail stopped: ${error.message}`)),
        onComplete: () => stop(),
        onConnectionStateChange: (state) => {
          if (state.state === 'pending') {
            if (reconnecting) process.stderr.write('reconnected\n');
            reconnecting = false;
            return;
          }
          if (state.state !== 'connecting' || !state.error) return;
          const status = (state.error.cause as { code?: unknown } | undefined)?.code ?? state.error.data?.httpStatus;
          if (status === 401 || status === 403) {
            stop(new AuthError(`the server refused the ${describe(online.credential)} for the tail`));
            return;
          }
          if (!reconnecting) {
            const why = state.error.message.replace(/^\w*Error: /, '');
            process.stderr.write(`connection lost (${why}); reconnecting…\n`);
          }
          reconnecting = true;
        },
      },
    );
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** Counts records as they pass: lines of JSONL, or CSV rows (a newline inside a quoted field is not a row's end). */
function recordCounter(format: 'jsonl' | 'csv', onCount: (records: number, bytes: number) => void) {
  let records = 0;
  let bytes = 0;
  let quoted = false;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      for (const byte of chunk) {
        if (format === 'csv' && byte === 0x22) quoted = !quoted;
        else if (byte === 0x0a && !quoted) records++;
      }
      onCount(records, bytes);
      callback(null, chunk);
    },
  });
  return { counter, counts: () => ({ records, bytes }) };
}

async function exportEvents(flags: ExportFlags): Promise<void> {
  const filters = auditFilters(flags);
  const online = connect(flags);
  const { out } = online;
  const base = online.resolved.url.value.replace(/\/+$/, '');
  const url = `${base}/v1/audit/export?${filterParams(filters).toString()}&format=${flags.format}`;
  // No bar when the events themselves scroll on the same terminal: redrawn among them it would garble both.
  const bar = Boolean(process.stderr.isTTY) && !out.json && (flags.output !== undefined || !process.stdout.isTTY);
  // A total for the bar, from the hourly counts with the same filters: only when a bar will be drawn.
  let total: number | undefined;
  if (bar) {
    const counts = await call(online, () => online.client.audit.countsByHour.query(filters)).catch(() => []);
    total = counts.reduce((sum, c) => sum + c.count, 0);
  }
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${online.credential.value}`, 'user-agent': USER_AGENT },
    });
  } catch (error) {
    throw new Error(`cannot reach the server: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok || !response.body) {
    const body = (await response.json().catch(() => ({}))) as { error?: string };
    const message = body.error ?? `HTTP ${response.status}`;
    if (response.status === 401) {
      throw new AuthError(
        `the server refused the ${describe(online.credential)} (${message}); set a valid one with \`keyledger auth set\``,
      );
    }
    if (response.status === 403) throw new AuthError(`forbidden with the ${describe(online.credential)}: ${message}`);
    if (response.status === 400) throw new UsageError(message);
    throw new Error(`export failed: ${message}`);
  }
  const { counter, counts } = recordCounter(flags.format, (records) =>
    bar ? out.progress(flags.format === 'csv' ? Math.max(0, records - 1) : records, total, 'exporting') : undefined,
  );
  const path = flags.output ? resolve(flags.output) : undefined;
  const partial = path ? `${path}.partial` : undefined;
  const sink: Writable = partial ? createWriteStream(partial, { mode: 0o600 }) : process.stdout;
  try {
    await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), counter, sink, {
      end: Boolean(partial),
    });
    if (partial && path) await rename(partial, path);
  } catch (error) {
    if (partial) await unlink(partial).catch(() => undefined);
    throw new Error(`export interrupted: ${(error as Error).message}`, { cause: error });
  } finally {
    out.endProgress();
  }
  const { records, bytes } = counts();
  const events = flags.format === 'csv' ? Math.max(0, records - 1) : records;
  if (path)
    out.result({ format: flags.format, path, events, bytes }, `exported ${events} events (${bytes} bytes) to ${path}`);
}
