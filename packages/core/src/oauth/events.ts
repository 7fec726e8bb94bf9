import { z } from 'zod';
import { defineEvent } from '../event-store/catalogue.ts';
import { emailField, idField } from '../schemas.ts';

/** Accounts are keyed by (issuer, subject): `issuer` and the provider's `email` make the projection a pure fold. */
export const oauthAccountLinked = defineEvent('oauth.account_linked', 1, {
  user_id: idField,
  provider: z.string().min(1).max(64),
  issuer: z.string().min(1).max(512),
  subject: z.string().min(1).max(255),
  email: emailField.nullable(),
  email_verified: z.boolean(),
});
export const oauthSigninFailed = defineEvent('oauth.signin_failed', 1, {
  provider: z.string().min(1).max(64),
  reason: z.enum([
    'state_mismatch',
    'id_token_invalid',
    'access_denied',
    'provider_unavailable',
    'account_exists_unverified',
    'signup_closed',
  ]),
});

export const oauthEvents = [oauthAccountLinked, oauthSigninFailed] as const;
