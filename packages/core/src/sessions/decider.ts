import { DomainError } from '../errors.ts';
import type { EventOf } from '../event-store/catalogue.ts';
import type { Decider } from '../event-store/decider.ts';
import type {
  sessionCreated,
  sessionExtended,
  sessionRefreshed,
  sessionRefreshRejected,
  sessionRevoked,
} from './events.ts';

export type SessionEvent = EventOf<
  | typeof sessionCreated
  | typeof sessionRefreshed
  | typeof sessionRefreshRejected
  | typeof sessionRevoked
  | typeof sessionExtended
>;

/** How long the token before a refresh keeps working: many tabs refresh at once, and that is normal. */
export const REFRESH_GRACE_MS = 10_000;

export interface Session {
  readonly id: string;
  readonly userId: string;
  readonly tokenHash: string;
  readonly prevTokenHash: string | null;
  readonly prevValidUntil: Date | null;
  readonly expiresAt: Date;
  readonly revoked: boolean;
}
export type SessionState = Session | null;

export type RevokeReason = 'signout' | 'user' | 'admin' | 'reuse' | 'password_changed' | 'user_disabled';

export type SessionCommand =
  | {
      type: 'CreateSession';
      data: {
        sessionId: string;
        userId: string;
        method: 'password' | 'magic_link' | 'oauth' | 'setup';
        tokenHash: string;
        expiresAt: Date;
      };
    }
  | {
      /** `successorHash` is derived from the presented token by the caller (an HMAC), so every instance agrees. */
      type: 'RefreshSession';
      data: {
        presentedHash: string;
        successorHash: string;
        now: Date;
        expiresAt: Date;
        /** The presented token was issued for this session (the sessions table or the log says so). */
        issuedForSession?: boolean;
      };
    }
  | { type: 'ExtendSession'; data: { expiresAt: Date } }
  | { type: 'RevokeSession'; data: { reason: RevokeReason } };

export const sessionDecider: Decider<SessionState, SessionCommand, SessionEvent> = {
  initialState: () => null,

  evolve(state, event) {
    switch (event.type) {
      case 'session.created':
        return {
          id: event.data.session_id,
          userId: event.data.user_id,
          tokenHash: event.data.token_hash,
          prevTokenHash: null,
          prevValidUntil: null,
          expiresAt: new Date(event.data.expires_at),
          revoked: false,
        };
      case 'session.refreshed':
        return (
          state && {
            ...state,
            prevTokenHash: state.tokenHash,
            prevValidUntil: new Date(event.occurred_at.getTime() + REFRESH_GRACE_MS),
            tokenHash: event.data.token_hash,
            expiresAt: new Date(event.data.expires_at),
          }
        );
      case 'session.extended':
        return state && { ...state, expiresAt: new Date(event.data.expires_at) };
      case 'session.revoked':
        return state && { ...state, revoked: true };
      case 'session.refresh_rejected':
        return state;
      default: {
        const unhandled: never = event;
        return unhandled;
      }
    }
  },

  decide(command, state) {
    switch (command.type) {
      case 'CreateSession': {
        if (state) throw new DomainError('conflict', 'session already exists');
        const d = command.data;
        return [
          {
            type: 'session.created',
            data: {
              session_id: d.sessionId,
              user_id: d.userId,
              method: d.method,
              token_hash: d.tokenHash,
              expires_at: d.expiresAt.toISOString(),
            },
          },
        ];
      }
      case 'RefreshSession': {
        if (!state) throw new DomainError('unauthorized', 'Invalid or expired token');
        const { presentedHash, successorHash, now, expiresAt } = command.data;
        const session_id = state.id;
        if (state.revoked) return [{ type: 'session.refresh_rejected', data: { session_id, reason: 'revoked' } }];
        if (presentedHash === state.tokenHash) {
          if (now >= state.expiresAt)
            return [{ type: 'session.refresh_rejected', data: { session_id, reason: 'expired' } }];
          return [
            {
              type: 'session.refreshed',
              data: { session_id, token_hash: successorHash, expires_at: expiresAt.toISOString() },
            },
          ];
        }
        const previous = presentedHash === state.prevTokenHash;
        // Within the grace window a second refresh with the old token is the same request again: no new event.
        if (previous && state.prevValidUntil && now < state.prevValidUntil && successorHash === state.tokenHash)
          return [];
        // The previous token after its grace, or one issued for this session before it: reuse (theft).
        if (previous || command.data.issuedForSession)
          return [
            { type: 'session.refresh_rejected', data: { session_id, reason: 'reused' } },
            { type: 'session.revoked', data: { session_id, reason: 'reuse' } },
          ];
        throw new DomainError('unauthorized', 'Invalid or expired token');
      }
      case 'ExtendSession':
        if (!state || state.revoked) throw new DomainError('not_found', 'Session not found');
        if (command.data.expiresAt <= state.expiresAt) return [];
        return [
          {
            type: 'session.extended',
            data: { session_id: state.id, expires_at: command.data.expiresAt.toISOString() },
          },
        ];
      case 'RevokeSession':
        if (!state || state.revoked) throw new DomainError('not_found', 'Session not found');
        return [{ type: 'session.revoked', data: { session_id: state.id, reason: command.data.reason } }];
      default: {
        const unhandled: never = command;
        return unhandled;
      }
    }
  },
};

export const sessionStream = (sessionId: string) => `session-${sessionId}`;
