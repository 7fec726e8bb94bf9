import type { Projection, StoredEvent } from '../event-store/types.ts';
import type { UserEvent } from './decider.ts';

/** The `users` table: one row per registered user, folded from the user.* events. */
export const usersProjection: Projection = {
  name: 'users',
  tables: ['users'],
  async apply(trx, stored) {
    const event = stored as StoredEvent & UserEvent;
    const at = stored.occurred_at;
    switch (event.type) {
      case 'user.registered':
        await trx
          .insertInto('users')
          .values({
            id: event.data.user_id,
            email: event.data.email,
            name: event.data.name,
            role: event.data.role,
            registration_method: event.data.method,
            created_at: at,
            updated_at: at,
          })
          .execute();
        return;
      case 'user.email_verified':
        await trx
          .updateTable('users')
          .set({ email_verified: true, updated_at: at })
          .where('id', '=', event.data.user_id)
          .execute();
        return;
      case 'user.password_set':
        await trx
          .updateTable('users')
          .set({ has_password: true, updated_at: at })
          .where('id', '=', event.data.user_id)
          .execute();
        return;
      case 'user.role_changed':
        await trx
          .updateTable('users')
          .set({ role: event.data.to, updated_at: at })
          .where('id', '=', event.data.user_id)
          .execute();
        return;
      case 'user.renamed':
        await trx
          .updateTable('users')
          .set({ name: event.data.to, updated_at: at })
          .where('id', '=', event.data.user_id)
          .execute();
        return;
      case 'user.disabled':
      case 'user.enabled':
        await trx
          .updateTable('users')
          .set({ disabled: event.type === 'user.disabled', updated_at: at })
          .where('id', '=', event.data.user_id)
          .execute();
        return;
      default:
        return;
    }
  },
};
