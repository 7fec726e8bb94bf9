import { DomainError } from '../errors.ts';
import type { EventOf } from '../event-store/catalogue.ts';
import type { Decider } from '../event-store/decider.ts';
import type { Scope } from '../schemas.ts';
import type { apiKeyCreated, apiKeyRevoked, apiKeyRotated } from './events.ts';

export type ApiKeyEvent = EventOf<typeof apiKeyCreated | typeof apiKeyRotated | typeof apiKeyRevoked>;

/** Rotation keeps the old key working this long by default; 0 ends it at once; never more than 30 days. */
export const DEFAULT_GRACE_SECONDS = 3600;
export const MAX_GRACE_SECONDS = 30 * 24 * 3600;

export interface ApiKey {
  readonly id: string;
  readonly ownerId: string;
  readonly scopes: readonly Scope[];
  readonly revoked: boolean;
  readonly rotatedTo: string | null;
}
export type ApiKeyState = ApiKey | null;

export type RevokeKeyReason = 'owner' | 'admin' | 'user_disabled' | 'rotated' | 'compromised';

export type ApiKeyCommand =
  | {
      type: 'CreateApiKey';
      data: {
        keyId: string;
        ownerId: string;
        name: string | null;
        scopes: Scope[];
        start: string;
        tokenHash: string;
        expiresAt: Date | null;
        ipAllowlist: string[] | null;
        rotatedFrom: string | null;
      };
    }
  | { type: 'RotateApiKey'; data: { newKeyId: string; graceUntil: Date } }
  | { type: 'RevokeApiKey'; data: { reason: RevokeKeyReason } };

const notFound = () => new DomainError('not_found', 'API key not found');

export const apiKeyDecider: Decider<ApiKeyState, ApiKeyCommand, ApiKeyEvent> = {
  initialState: () => null,

  evolve(state, event) {
    switch (event.type) {
      case 'api_key.created':
        return {
          id: event.data.key_id,
          ownerId: event.data.owner_id,
          scopes: event.data.scopes,
          revoked: false,
          rotatedTo: null,
        };
      case 'api_key.rotated':
        return state && { ...state, rotatedTo: event.data.new_key_id };
      case 'api_key.revoked':
        return state && { ...state, revoked: true };
      default: {
        const unhandled: never = event;
        return unhandled;
      }
    }
  },

  decide(command, state) {
    switch (command.type) {
      case 'CreateApiKey': {
        if (state) throw new DomainError('conflict', 'API key already exists');
        const d = command.data;
        return [
          {
            type: 'api_key.created',
            data: {
              key_id: d.keyId,
              owner_id: d.ownerId,
              name: d.name,
              scopes: d.scopes,
              start: d.start,
              token_hash: d.tokenHash,
              expires_at: d.expiresAt?.toISOString() ?? null,
              ip_allowlist: d.ipAllowlist,
              rotated_from: d.rotatedFrom,
            },
          },
        ];
      }
      case 'RotateApiKey':
        if (!state || state.revoked) throw notFound();
        if (state.rotatedTo)
          throw new DomainError('conflict', 'This key was already rotated; rotate its successor instead');
        return [
          {
            type: 'api_key.rotated',
            data: {
              key_id: state.id,
              new_key_id: command.data.newKeyId,
              grace_until: command.data.graceUntil.toISOString(),
            },
          },
        ];
      case 'RevokeApiKey':
        if (!state || state.revoked) throw notFound();
        return [{ type: 'api_key.revoked', data: { key_id: state.id, reason: command.data.reason } }];
      default: {
        const unhandled: never = command;
        return unhandled;
      }
    }
  },
};

export const apiKeyStream = (keyId: string) => `api_key-${keyId}`;
