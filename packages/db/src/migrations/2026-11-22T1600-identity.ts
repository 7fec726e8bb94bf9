import { type Kysely, sql } from 'kysely';

// Identity: the users, sessions and api_keys projections (folds of the log, rebuilt by `projections rebuild`),
// and the state that is deliberately not in the log: password hashes, activity timestamps, throttling counters,
// idempotency records, one-time setup tokens and server-side secrets.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'member')`))
    .addColumn('disabled', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('email_verified', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('has_password', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('registration_method', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  // One account per address, whatever its case: the unique index is what settles two concurrent sign-ups.
  await sql`create unique index users_email_key on users (lower(email))`.execute(db);
  await sql`create index users_created_at_idx on users (created_at, id)`.execute(db);

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    // browser: 30 days, sliding; api: 1 h, renewed by refresh. Derived from session.created's lifetime.
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('browser', 'api')`))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('prev_token_hash', 'text')
    .addColumn('prev_valid_until', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('revoked_reason', 'text')
    .addColumn('created_ip', 'text')
    .addColumn('created_user_agent', 'text')
    .execute();
  await sql`create index sessions_user_idx on sessions (user_id) where revoked_at is null`.execute(db);
  await sql`create index sessions_prev_token_idx on sessions (prev_token_hash) where prev_token_hash is not null`.execute(
    db,
  );

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('start', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz')
    .addColumn('ip_allowlist', sql`text[]`)
    .addColumn('rotated_from', 'text')
    .addColumn('rotated_to', 'text')
    .addColumn('grace_until', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('revoked_reason', 'text')
    .execute();
  await sql`create index api_keys_owner_idx on api_keys (owner_id, created_at, id)`.execute(db);

  // Not in the log, by design (DESIGN §2): mutable secrets and counters.
  await db.schema
    .createTable('password_credentials')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('session_activity')
    .addColumn('session_id', 'text', (c) => c.primaryKey())
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .execute();
  await db.schema
    .createTable('api_key_usage')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('last_used_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('signin_throttle')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('last_failure_at', 'timestamptz', (c) => c.notNull())
    .addColumn('blocked_until', 'timestamptz')
    .execute();
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('principal', 'text', (c) => c.notNull())
    .addColumn('route', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('resource_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pkey', ['principal', 'route', 'key'])
    .execute();
  await db.schema
    .createTable('setup_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute();
  await db.schema
    .createTable('server_secrets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('identity tables are rebuilt from the log, not dropped by a migration');
}
