import { type Kysely, sql } from 'kysely';

/**
 * How far out of time order the log has ever been: the newest `occurred_at` appended so far, and the largest amount
 * by which an event's `occurred_at` was earlier than an event before it (server clocks differ a little between
 * instances). With it a time range becomes an exact `seq` range through the occurred_at index (ADR 17), so an audit
 * query for an hour in the middle of the log does not walk the log from one end.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table chain_head add column latest_at timestamptz`.execute(db);
  await sql`alter table chain_head add column max_lateness_ms bigint not null default 0`.execute(db);
  await sql`
    update chain_head set
      latest_at = (select max(occurred_at) from events),
      max_lateness_ms = coalesce((
        select ceil(max(extract(epoch from (before - occurred_at)) * 1000))::bigint
        from (select occurred_at,
                     max(occurred_at) over (order by seq rows between unbounded preceding and 1 preceding) as before
              from events) t
        where before > occurred_at), 0)
    where id`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('rebuilt from the log, not dropped by a migration');
}
