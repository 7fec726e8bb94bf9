import type { Projection, StoredEvent } from '../event-store/types.ts';
import type { ApiKeyEvent } from './decider.ts';

/** The `api_keys` table, folded from api_key.* events; last use lives apart, outside the log. */
export const apiKeysProjection: Projection = {
  name: 'api_keys',
  tables: ['api_keys'],
  async apply(trx, stored) {
    const event = stored as StoredEvent & ApiKeyEvent;
    switch (event.type) {
      case 'api_key.created':
        await trx
          .insertInto('api_keys')
          .values({
            id: event.data.key_id,
            owner_id: event.data.owner_id,
            name: event.data.name,
            scopes: event.data.scopes,
            start: event.data.start,
            token_hash: event.data.token_hash,
            created_at: stored.occurred_at,
            expires_at: event.data.expires_at ? new Date(event.data.expires_at) : null,
            ip_allowlist: event.data.ip_allowlist,
            rotated_from: event.data.rotated_from,
          })
          .execute();
        return;
      case 'api_key.rotated':
        await trx
          .updateTable('api_keys')
          .set({ rotated_to: event.data.new_key_id, grace_until: new Date(event.data.grace_until) })
          .where('id', '=', event.data.key_id)
          .execute();
        return;
      case 'api_key.revoked':
        await trx
          .updateTable('api_keys')
          .set({ revoked_at: stored.occurred_at, revoked_reason: event.data.reason })
          .where('id', '=', event.data.key_id)
          .execute();
        return;
      default:
        return;
    }
  },
};
