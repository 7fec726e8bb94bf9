import { createHash } from 'node:crypto';
import { DomainError } from '../errors.ts';
import type { EventOf } from '../event-store/catalogue.ts';
import type { Decider } from '../event-store/decider.ts';
import type { oauthAccountLinked } from './events.ts';

export type OauthAccountEvent = EventOf<typeof oauthAccountLinked>;

export interface OauthAccount {
  readonly userId: string;
  readonly provider: string;
  readonly issuer: string;
  readonly subject: string;
}
export type OauthAccountState = OauthAccount | null;

export type OauthAccountCommand = {
  type: 'LinkAccount';
  data: {
    userId: string;
    provider: string;
    issuer: string;
    subject: string;
    email: string | null;
    emailVerified: boolean;
  };
};

/** One stream per (issuer, subject): the stream's version 0 is what settles two concurrent first sign-ins. */
export const oauthAccountStream = (issuer: string, subject: string) =>
  `oauth_account-${createHash('sha256').update(`${issuer}\n${subject}`).digest('hex').slice(0, 32)}`;

export const oauthAccountDecider: Decider<OauthAccountState, OauthAccountCommand, OauthAccountEvent> = {
  initialState: () => null,
  evolve(_state, event) {
    const d = event.data;
    return { userId: d.user_id, provider: d.provider, issuer: d.issuer, subject: d.subject };
  },
  decide(command, state) {
    if (state) throw new DomainError('conflict', 'This account is already linked');
    const d = command.data;
    return [
      {
        type: 'oauth.account_linked',
        data: {
          user_id: d.userId,
          provider: d.provider,
          issuer: d.issuer,
          subject: d.subject,
          email: d.email,
          email_verified: d.emailVerified,
        },
      },
    ];
  },
};
