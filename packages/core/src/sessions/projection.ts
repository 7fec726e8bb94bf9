import type { Projection, StoredEvent } from '../event-store/types.ts';
import { REFRESH_GRACE_MS, type SessionEvent } from './decider.ts';
import { API_SESSION_MS } from './service.ts';

/** The `sessions` table, folded from session.* events; activity (last seen) lives apart, outside the log. */
export const sessionsProjection: Projection = {
  name: 'sessions',
  tables: ['sessions'],
  async apply(trx, stored) {
    const event = stored as StoredEvent & SessionEvent;
    switch (event.type) {
      case 'session.created':
        await trx
          .insertInto('sessions')
          .values({
            id: event.data.session_id,
            user_id: event.data.user_id,
            method: event.data.method,
            // A session made to last longer than an API token's hour is a browser session (30 days, sliding).
            kind:
              new Date(event.data.expires_at).getTime() - stored.occurred_at.getTime() > API_SESSION_MS
                ? 'browser'
                : 'api',
            token_hash: event.data.token_hash,
            created_at: stored.occurred_at,
            expires_at: new Date(event.data.expires_at),
            created_ip: stored.meta.ip,
            created_user_agent: stored.meta.user_agent,
          })
          .execute();
        return;
      case 'session.refreshed':
        await trx
          .updateTable('sessions')
          .set((eb) => ({
            prev_token_hash: eb.ref('token_hash'),
            prev_valid_until: new Date(stored.occurred_at.getTime() + REFRESH_GRACE_MS),
            token_hash: event.data.token_hash,
            expires_at: new Date(event.data.expires_at),
          }))
          .where('id', '=', event.data.session_id)
          .execute();
        return;
      case 'session.extended':
        await trx
          .updateTable('sessions')
          .set({ expires_at: new Date(event.data.expires_at) })
          .where('id', '=', event.data.session_id)
          .execute();
        return;
      case 'session.revoked':
        await trx
          .updateTable('sessions')
          .set({ revoked_at: stored.occurred_at, revoked_reason: event.data.reason })
          .where('id', '=', event.data.session_id)
          .execute();
        return;
      default:
        return;
    }
  },
};
