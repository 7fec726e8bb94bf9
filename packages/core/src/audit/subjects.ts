import type { Database } from '@keyledger/db';
import { sql, type Transaction } from 'kysely';
import type { Projection, StoredEvent } from '../event-store/types.ts';

/**
 * Which user an event is about: named in its data (user_id, owner_id), or found through the session, key or
 * address it names. Runs after the identity projections in the same transaction, so a session created in the same
 * batch is already there to look up.
 */
async function subjectsOf(trx: Transaction<Database>, event: StoredEvent): Promise<string[]> {
  const data = event.data as Record<string, unknown>;
  const found = new Set<string>();
  for (const field of ['user_id', 'owner_id'] as const) {
    const v = data[field];
    if (typeof v === 'string') found.add(v);
  }
  if (found.size === 0 && typeof data.session_id === 'string') {
    const row = await trx.selectFrom('sessions').select('user_id').where('id', '=', data.session_id).executeTakeFirst();
    if (row) found.add(row.user_id);
  }
  if (found.size === 0 && typeof data.key_id === 'string') {
    const row = await trx.selectFrom('api_keys').select('owner_id').where('id', '=', data.key_id).executeTakeFirst();
    if (row) found.add(row.owner_id);
  }
  if (found.size === 0 && typeof data.email === 'string') {
    const row = await trx
      .selectFrom('users')
      .select('id')
      .where(sql<string>`lower(email)`, '=', data.email.toLowerCase())
      .executeTakeFirst();
    if (row) found.add(row.id);
  }
  if (event.type === 'access.denied' && typeof data.principal === 'string' && data.principal.startsWith('user_'))
    found.add(data.principal);
  return [...found];
}

export const eventSubjectsProjection: Projection = {
  name: 'event_subjects',
  tables: ['event_subjects'],
  async apply(trx, event) {
    const subjects = await subjectsOf(trx, event);
    if (subjects.length === 0) return;
    await trx
      .insertInto('event_subjects')
      .values(subjects.map((user_id) => ({ user_id, seq: event.seq })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  },
};
