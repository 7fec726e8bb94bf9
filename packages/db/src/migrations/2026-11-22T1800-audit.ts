import { type Kysely, sql } from 'kysely';

// Audit reads: which user each event is about (a projection, rebuilt from the log), and indexes for the filters.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('event_subjects')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('event_subjects_pkey', ['user_id', 'seq'])
    .execute();
  await sql`create index events_actor_seq_idx on events ((meta->'actor'->>'id'), seq)`.execute(db);
  await sql`create index events_ip_seq_idx on events ((meta->>'ip'), seq)`.execute(db);
  await sql`create index events_stream_seq_idx on events (stream, seq)`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('rebuilt from the log, not dropped by a migration');
}
