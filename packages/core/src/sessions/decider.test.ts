import { describe, expect, it } from 'vitest';
import { given } from '../../test/given-when-then.ts';
import { type SessionEvent, sessionDecider } from './decider.ts';

const T0 = new Date('2026-11-22T14:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const h = (c: string) => c.repeat(64);
const created: SessionEvent & { occurred_at: Date } = {
  type: 'session.created',
  data: {
    session_id: 'ses_1',
    user_id: 'user_1',
    method: 'password',
    token_hash: h('a'),
    expires_at: at(3_600_000).toISOString(),
  },
  occurred_at: T0,
};
const refreshed: SessionEvent & { occurred_at: Date } = {
  type: 'session.refreshed',
  data: { session_id: 'ses_1', token_hash: h('b'), expires_at: at(4_000_000).toISOString() },
  occurred_at: at(60_000),
};
const refresh = (presented: string, successor: string, now: Date) =>
  ({
    type: 'RefreshSession',
    data: { presentedHash: presented, successorHash: successor, now, expiresAt: at(7_200_000) },
  }) as const;

describe('session decider', () => {
  it('creates a session', () => {
    given(sessionDecider)
      .when({
        type: 'CreateSession',
        data: { sessionId: 'ses_1', userId: 'user_1', method: 'password', tokenHash: h('a'), expiresAt: at(3_600_000) },
      })
      .then([{ type: 'session.created', data: created.data }]);
  });

  it('refreshes with the current token, rotating it', () => {
    given(sessionDecider, [created])
      .when(refresh(h('a'), h('b'), at(1000)))
      .then([
        {
          type: 'session.refreshed',
          data: { session_id: 'ses_1', token_hash: h('b'), expires_at: at(7_200_000).toISOString() },
        },
      ]);
  });

  it('answers a second refresh with the old token inside the grace window with no new event', () => {
    given(sessionDecider, [created, refreshed])
      .when(refresh(h('a'), h('b'), at(60_000 + 9_999)))
      .then([]);
  });

  it('treats the old token after the grace window as theft: rejected and the session revoked', () => {
    given(sessionDecider, [created, refreshed])
      .when(refresh(h('a'), h('b'), at(60_000 + 10_000)))
      .then([
        { type: 'session.refresh_rejected', data: { session_id: 'ses_1', reason: 'reused' } },
        { type: 'session.revoked', data: { session_id: 'ses_1', reason: 'reuse' } },
      ]);
  });

  it('refuses to refresh an expired session', () => {
    given(sessionDecider, [created])
      .when(refresh(h('a'), h('b'), at(3_600_000)))
      .then([{ type: 'session.refresh_rejected', data: { session_id: 'ses_1', reason: 'expired' } }]);
  });

  it('refuses to refresh a revoked session', () => {
    given(sessionDecider, [created, { type: 'session.revoked', data: { session_id: 'ses_1', reason: 'signout' } }])
      .when(refresh(h('a'), h('b'), at(1000)))
      .then([{ type: 'session.refresh_rejected', data: { session_id: 'ses_1', reason: 'revoked' } }]);
  });

  it('refuses a token that is neither the current nor the previous one', () => {
    given(sessionDecider, [created, refreshed])
      .when(refresh(h('c'), h('d'), at(61_000)))
      .thenThrows('unauthorized');
    given(sessionDecider)
      .when(refresh(h('a'), h('b'), at(0)))
      .thenThrows('unauthorized');
  });

  it('treats a token issued earlier than the previous one (as the log shows) as theft too', () => {
    const older = {
      type: 'RefreshSession',
      data: {
        presentedHash: h('z'),
        successorHash: h('d'),
        now: at(61_000),
        expiresAt: at(7_200_000),
        issuedForSession: true,
      },
    } as const;
    given(sessionDecider, [created, refreshed])
      .when(older)
      .then([
        { type: 'session.refresh_rejected', data: { session_id: 'ses_1', reason: 'reused' } },
        { type: 'session.revoked', data: { session_id: 'ses_1', reason: 'reuse' } },
      ]);
    given(sessionDecider, [
      created,
      refreshed,
      { type: 'session.revoked', data: { session_id: 'ses_1', reason: 'signout' } },
    ])
      .when(older)
      .then([{ type: 'session.refresh_rejected', data: { session_id: 'ses_1', reason: 'revoked' } }]);
  });

  it('extends only forward, and never a revoked session', () => {
    given(sessionDecider, [created])
      .when({ type: 'ExtendSession', data: { expiresAt: at(9_000_000) } })
      .then([{ type: 'session.extended', data: { session_id: 'ses_1', expires_at: at(9_000_000).toISOString() } }]);
    given(sessionDecider, [created])
      .when({ type: 'ExtendSession', data: { expiresAt: at(1000) } })
      .then([]);
    given(sessionDecider, [created, { type: 'session.revoked', data: { session_id: 'ses_1', reason: 'user' } }])
      .when({ type: 'ExtendSession', data: { expiresAt: at(9_000_000) } })
      .thenThrows('not_found');
  });

  it('revokes once; a second revoke is not_found', () => {
    given(sessionDecider, [created])
      .when({ type: 'RevokeSession', data: { reason: 'admin' } })
      .then([{ type: 'session.revoked', data: { session_id: 'ses_1', reason: 'admin' } }]);
    given(sessionDecider, [created, { type: 'session.revoked', data: { session_id: 'ses_1', reason: 'signout' } }])
      .when({ type: 'RevokeSession', data: { reason: 'admin' } })
      .thenThrows('not_found');
  });

  it('keeps the previous token valid for exactly ten seconds after the refresh', () => {
    const { state } = given(sessionDecider, [created, refreshed]);
    expect(state?.prevTokenHash).toBe(h('a'));
    expect(state?.prevValidUntil?.toISOString()).toBe(at(70_000).toISOString());
  });
});
