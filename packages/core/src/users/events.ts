import { z } from 'zod';
import { defineEvent } from '../event-store/catalogue.ts';
import { emailField, idField, roleField } from '../schemas.ts';

export const userRegistered = defineEvent('user.registered', 1, {
  user_id: idField,
  email: emailField,
  name: z.string().max(200).nullable(),
  role: roleField,
  method: z.enum(['password', 'magic_link', 'oauth', 'admin', 'bootstrap']),
});
export const userInvited = defineEvent('user.invited', 1, { user_id: idField, link_id: idField });
export const userEmailVerified = defineEvent('user.email_verified', 1, { user_id: idField });
/** Records that a password was set; the hash lives in password_credentials, never here. */
export const userPasswordSet = defineEvent('user.password_set', 1, { user_id: idField });
export const userRoleChanged = defineEvent('user.role_changed', 1, {
  user_id: idField,
  from: roleField,
  to: roleField,
});
/** A display-name change (not in DESIGN §3's table: added so a rename is in the log like every other change). */
export const userRenamed = defineEvent('user.renamed', 1, {
  user_id: idField,
  from: z.string().max(200).nullable(),
  to: z.string().max(200).nullable(),
});
export const userDisabled = defineEvent('user.disabled', 1, { user_id: idField });
export const userEnabled = defineEvent('user.enabled', 1, { user_id: idField });
export const signinFailed = defineEvent('signin.failed', 1, {
  email: emailField,
  reason: z.enum(['unknown_user', 'bad_password', 'disabled', 'throttled']),
});

export const userEvents = [
  userRegistered,
  userInvited,
  userEmailVerified,
  userPasswordSet,
  userRoleChanged,
  userRenamed,
  userDisabled,
  userEnabled,
  signinFailed,
] as const;
