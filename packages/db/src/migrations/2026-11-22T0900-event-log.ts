import { type Kysely, sql } from 'kysely';

// The log itself, its chain head, signed checkpoints and the transactional outbox.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('events')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('id', 'uuid', (c) => c.notNull().unique())
    .addColumn('stream', 'text', (c) => c.notNull())
    .addColumn('stream_version', 'integer', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('schema_version', 'smallint', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('meta', 'jsonb', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('tx_id', sql`xid8`, (c) => c.notNull().defaultTo(sql`pg_current_xact_id()`))
    .addColumn('prev_hash', 'bytea', (c) => c.notNull())
    .addColumn('hash', 'bytea', (c) => c.notNull())
    .addUniqueConstraint('events_stream_version_key', ['stream', 'stream_version'])
    .addCheckConstraint('events_seq_positive', sql`seq > 0`)
    .addCheckConstraint('events_stream_version_positive', sql`stream_version > 0`)
    .addCheckConstraint('events_hash_length', sql`octet_length(prev_hash) = 32 and octet_length(hash) = 32`)
    .execute();
  await db.schema.createIndex('events_type_seq_idx').on('events').columns(['type', 'seq']).execute();
  await db.schema.createIndex('events_occurred_at_idx').on('events').column('occurred_at').execute();

  await db.schema
    .createTable('chain_head')
    .addColumn('id', 'boolean', (c) => c.primaryKey().defaultTo(true))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('hash', 'bytea', (c) => c.notNull())
    .addCheckConstraint('chain_head_singleton', sql`id`)
    .execute();
  await sql`insert into chain_head (id, seq, hash) values (true, 0, ${new Uint8Array(32)})`.execute(db);

  await db.schema
    .createTable('checkpoints')
    .addColumn('size', 'bigint', (c) => c.primaryKey())
    .addColumn('head_hash', 'bytea', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('note', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('outbox')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('event_seq', 'bigint')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('available_at', 'timestamptz', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .execute();
  await sql`create index outbox_pending_idx on outbox (topic, available_at) where delivered_at is null`.execute(db);

  // Append-only is enforced here, not by convention: these fire for every role, the owner included.
  // Only a superuser who disables triggers can get past them, and the exported checkpoints catch that.
  await sql`
    create function keyledger_reject_mutation() returns trigger language plpgsql as $$
    begin
      raise exception '% is append-only: % is not allowed', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
    end
    $$`.execute(db);
  for (const table of ['events', 'checkpoints']) {
    await sql`create trigger ${sql.raw(`${table}_no_update_delete`)} before update or delete on ${sql.table(table)}
      for each row execute function keyledger_reject_mutation()`.execute(db);
    await sql`create trigger ${sql.raw(`${table}_no_truncate`)} before truncate on ${sql.table(table)}
      for each statement execute function keyledger_reject_mutation()`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('the event log is never dropped by a migration');
}
