import { type Kysely, sql } from 'kysely';

/**
 * A signed-in person can link a Google/OIDC identity from their account page: the pending request remembers whose
 * session started it (the request row is single use and lives 10 minutes, like the rest of it).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table oauth_requests add column link_user_id text`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('rebuilt from the log, not dropped by a migration');
}
