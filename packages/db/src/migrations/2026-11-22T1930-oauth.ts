import { type Kysely, sql } from 'kysely';

// OAuth / OpenID Connect: the oauth_accounts projection (a fold of oauth.account_linked, keyed by issuer and
// subject), and the short-lived, single-use authorization requests (state, PKCE verifier, nonce, next), which are
// not in the log: a code verifier is a secret, and a request is deleted when its callback arrives.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('oauth_accounts')
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('email_verified', 'boolean', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('oauth_accounts_pkey', ['issuer', 'subject'])
    .execute();
  await sql`create index oauth_accounts_user_idx on oauth_accounts (user_id)`.execute(db);

  await db.schema
    .createTable('oauth_requests')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('code_verifier', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('next', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`create index oauth_requests_expires_idx on oauth_requests (expires_at)`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('rebuilt from the log, not dropped by a migration');
}
