import { type Kysely, sql } from 'kysely';

/**
 * Every session token ever issued is in the log (`session.created` and `session.refreshed` carry its SHA-256): this
 * index finds the session of a token two or more rotations old, so a refresh with it is recognised as reuse and
 * revokes the session (DESIGN §4), not answered as an unknown token. The log is the history; nothing new is stored.
 * The build holds appends back while it reads the log (a plain index build in the migration's transaction): seconds
 * for a million events; on a far larger log, migrate in a quiet moment.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index events_session_token_hash on events ((data->>'token_hash'))
    where type in ('session.created', 'session.refreshed')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index events_session_token_hash`.execute(db);
}
