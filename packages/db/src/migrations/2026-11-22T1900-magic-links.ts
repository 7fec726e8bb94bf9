import { type Kysely, sql } from 'kysely';

// Magic links: the `magic_links` projection (folded from magic_link.* events; the code is stored only as its
// SHA-256) and the request counter behind the per-requester and per-address limits (outside the log: a request for
// an unknown address under invite-only sign-up writes no event, yet must be counted like any other).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('magic_links')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('code_hash', 'text', (c) => c.notNull().unique())
    .addColumn('next', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('superseded_at', 'timestamptz')
    .execute();
  await sql`create index magic_links_live_email_idx on magic_links (email) where used_at is null and superseded_at is null`.execute(
    db,
  );
  await db.schema
    .createTable('magic_link_requests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('requester', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`create index magic_link_requests_requester_idx on magic_link_requests (requester, created_at)`.execute(db);
  await sql`create index magic_link_requests_email_idx on magic_link_requests (email, created_at)`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('rebuilt from the log, not dropped by a migration');
}
