import { DomainError } from '../errors.ts';
import type { EventOf } from '../event-store/catalogue.ts';
import type { Decider } from '../event-store/decider.ts';
import type { magicLinkIssued, magicLinkRateLimited, magicLinkRejected, magicLinkVerified } from './events.ts';

export type MagicLinkEvent = EventOf<
  typeof magicLinkIssued | typeof magicLinkVerified | typeof magicLinkRejected | typeof magicLinkRateLimited
>;

/** Codes are valid 15 minutes, single use; a newer link for the same address supersedes older ones. */
export const MAGIC_LINK_TTL_MS = 15 * 60 * 1000;

export interface MagicLink {
  readonly id: string;
  readonly email: string;
  readonly userId: string | null;
  readonly codeHash: string;
  readonly next: string;
  readonly expiresAt: Date;
  readonly used: boolean;
}
export type MagicLinkState = MagicLink | null;

export type RejectReason = 'used' | 'expired' | 'superseded' | 'unknown';

export type MagicLinkCommand =
  | {
      type: 'IssueLink';
      data: {
        linkId: string;
        email: string;
        userId: string | null;
        codeHash: string;
        expiresAt: Date;
        next: string;
      };
    }
  | {
      /**
       * `superseded` comes from the projection (a newer link for the same address was issued after this one): the
       * link's own stream cannot know it. `sessionId` names the session the caller creates in the same append.
       */
      type: 'VerifyLink';
      data: { email: string; codeHash: string; now: Date; superseded: boolean; sessionId: string };
    };

export const magicLinkDecider: Decider<MagicLinkState, MagicLinkCommand, MagicLinkEvent> = {
  initialState: () => null,

  evolve(state, event) {
    switch (event.type) {
      case 'magic_link.issued':
        return {
          id: event.data.link_id,
          email: event.data.email,
          userId: event.data.user_id,
          codeHash: event.data.code_hash,
          next: event.data.next,
          expiresAt: new Date(event.data.expires_at),
          used: false,
        };
      case 'magic_link.verified':
        return state && { ...state, used: true };
      case 'magic_link.rejected':
      case 'magic_link.rate_limited':
        return state;
      default: {
        const unhandled: never = event;
        return unhandled;
      }
    }
  },

  decide(command, state) {
    switch (command.type) {
      case 'IssueLink': {
        if (state) throw new DomainError('conflict', 'magic link already exists');
        const d = command.data;
        return [
          {
            type: 'magic_link.issued',
            data: {
              link_id: d.linkId,
              email: d.email,
              user_id: d.userId,
              code_hash: d.codeHash,
              expires_at: d.expiresAt.toISOString(),
              next: d.next,
            },
          },
        ];
      }
      case 'VerifyLink': {
        const d = command.data;
        const reject = (reason: RejectReason): MagicLinkEvent[] => [
          { type: 'magic_link.rejected', data: { link_id: state?.id ?? null, reason } },
        ];
        if (!state || state.codeHash !== d.codeHash || state.email !== d.email) return reject('unknown');
        if (state.used) return reject('used');
        if (d.superseded) return reject('superseded');
        if (d.now >= state.expiresAt) return reject('expired');
        return [{ type: 'magic_link.verified', data: { link_id: state.id, session_id: d.sessionId } }];
      }
      default: {
        const unhandled: never = command;
        return unhandled;
      }
    }
  },
};

export const magicLinkStream = (linkId: string) => `magic_link-${linkId}`;
