import { randomBytes } from 'node:crypto';
import type { Database } from '@keyledger/db';
import { type Kysely, sql } from 'kysely';

/**
 * A server-side secret shared by every instance through the database (created once, never rotated silently).
 * It keys derivations (the refresh successor): it is useless without the token it is applied to.
 */
export async function loadServerSecret(db: Kysely<Database>, name: string, now: Date): Promise<Uint8Array> {
  await sql`insert into server_secrets (name, value, created_at) values (${name}, ${randomBytes(32)}, ${now})
    on conflict (name) do nothing`.execute(db);
  const row = await db.selectFrom('server_secrets').select('value').where('name', '=', name).executeTakeFirstOrThrow();
  return new Uint8Array(row.value);
}
