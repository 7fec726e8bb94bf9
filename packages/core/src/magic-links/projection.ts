import type { Projection, StoredEvent } from '../event-store/types.ts';
import type { MagicLinkEvent } from './decider.ts';

/**
 * The `magic_links` table. Issuing a link marks every older live link of the same address superseded, so the fold
 * of the log alone says which link is the live one.
 */
export const magicLinksProjection: Projection = {
  name: 'magic_links',
  tables: ['magic_links'],
  async apply(trx, stored) {
    const event = stored as StoredEvent & MagicLinkEvent;
    switch (event.type) {
      case 'magic_link.issued':
        await trx
          .updateTable('magic_links')
          .set({ superseded_at: stored.occurred_at })
          .where('email', '=', event.data.email)
          .where('used_at', 'is', null)
          .where('superseded_at', 'is', null)
          .execute();
        await trx
          .insertInto('magic_links')
          .values({
            id: event.data.link_id,
            email: event.data.email,
            user_id: event.data.user_id,
            code_hash: event.data.code_hash,
            next: event.data.next,
            expires_at: new Date(event.data.expires_at),
            created_at: stored.occurred_at,
          })
          .execute();
        return;
      case 'magic_link.verified':
        await trx
          .updateTable('magic_links')
          .set({ used_at: stored.occurred_at })
          .where('id', '=', event.data.link_id)
          .execute();
        return;
      default:
        return;
    }
  },
};
