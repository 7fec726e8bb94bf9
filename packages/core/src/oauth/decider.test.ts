import { describe, expect, it } from 'vitest';
import { given } from '../../test/given-when-then.ts';
import {
  type OauthAccountCommand,
  type OauthAccountEvent,
  oauthAccountDecider,
  oauthAccountStream,
} from './decider.ts';

const ISSUER = 'https://accounts.google.com';
const linked: OauthAccountEvent = {
  type: 'oauth.account_linked',
  data: {
    user_id: 'user_1',
    provider: 'google',
    issuer: ISSUER,
    subject: '1234567890',
    email: 'ada@example.com',
    email_verified: true,
  },
};
const link = (over: Partial<OauthAccountCommand['data']> = {}): OauthAccountCommand => ({
  type: 'LinkAccount',
  data: {
    userId: 'user_1',
    provider: 'google',
    issuer: ISSUER,
    subject: '1234567890',
    email: 'ada@example.com',
    emailVerified: true,
    ...over,
  },
});

describe('OAuth account decider', () => {
  it('links an unlinked (issuer, subject) to a user, with the provider’s email and whether it was verified', () => {
    given(oauthAccountDecider).when(link()).then([linked]);
  });

  it('keeps a provider that gives no email, or an unverified one, as such', () => {
    given(oauthAccountDecider)
      .when(
        link({
          userId: 'user_2',
          provider: 'corp',
          issuer: 'https://id.example.com',
          subject: 's-9',
          email: null,
          emailVerified: false,
        }),
      )
      .then([
        {
          type: 'oauth.account_linked',
          data: {
            user_id: 'user_2',
            provider: 'corp',
            issuer: 'https://id.example.com',
            subject: 's-9',
            email: null,
            email_verified: false,
          },
        },
      ]);
  });

  it('refuses to link an account that is already linked, to another user or to the same one', () => {
    given(oauthAccountDecider, [linked])
      .when(link({ userId: 'user_2' }))
      .thenThrows('conflict');
    given(oauthAccountDecider, [linked]).when(link()).thenThrows('conflict');
  });

  it('folds a link into the account: user, provider, issuer and subject', () => {
    expect(given(oauthAccountDecider).state).toBeNull();
    expect(given(oauthAccountDecider, [linked]).state).toEqual({
      userId: 'user_1',
      provider: 'google',
      issuer: ISSUER,
      subject: '1234567890',
    });
  });

  it('keeps one stream per (issuer, subject): the same pair always meets itself, another issuer or subject does not', () => {
    const stream = oauthAccountStream(ISSUER, '1234567890');
    expect(stream).toMatch(/^oauth_account-[0-9a-f]{32}$/);
    expect(oauthAccountStream(ISSUER, '1234567890')).toBe(stream);
    expect(oauthAccountStream('https://id.example.com', '1234567890')).not.toBe(stream);
    expect(oauthAccountStream(ISSUER, '1234567891')).not.toBe(stream);
  });
});
