import type { Projection, StoredEvent } from '../event-store/types.ts';
import type { OauthAccountEvent } from './decider.ts';

/** The `oauth_accounts` table: one row per linked (issuer, subject), folded from oauth.account_linked. */
export const oauthAccountsProjection: Projection = {
  name: 'oauth_accounts',
  tables: ['oauth_accounts'],
  async apply(trx, stored) {
    if (stored.type !== 'oauth.account_linked') return;
    const event = stored as StoredEvent & OauthAccountEvent;
    await trx
      .insertInto('oauth_accounts')
      .values({
        issuer: event.data.issuer,
        subject: event.data.subject,
        user_id: event.data.user_id,
        provider: event.data.provider,
        email: event.data.email,
        email_verified: event.data.email_verified,
        created_at: stored.occurred_at,
      })
      .execute();
  },
};
