import { describe, it } from 'vitest';
import { given } from '../../test/given-when-then.ts';
import { type ApiKeyEvent, apiKeyDecider } from './decider.ts';

const created: ApiKeyEvent = {
  type: 'api_key.created',
  data: {
    key_id: 'key_1',
    owner_id: 'user_1',
    name: 'ci',
    scopes: ['keys:read'],
    start: 'kl_key_AbCdE',
    token_hash: 'a'.repeat(64),
    expires_at: null,
    ip_allowlist: ['10.0.0.0/8'],
    rotated_from: null,
  },
};

describe('API key decider', () => {
  it('creates a key with its hash and display start, never the key', () => {
    given(apiKeyDecider)
      .when({
        type: 'CreateApiKey',
        data: {
          keyId: 'key_1',
          ownerId: 'user_1',
          name: 'ci',
          scopes: ['keys:read'],
          start: 'kl_key_AbCdE',
          tokenHash: 'a'.repeat(64),
          expiresAt: null,
          ipAllowlist: ['10.0.0.0/8'],
          rotatedFrom: null,
        },
      })
      .then([created]);
  });
  it('rotates once, naming the successor and the end of the grace period', () => {
    given(apiKeyDecider, [created])
      .when({ type: 'RotateApiKey', data: { newKeyId: 'key_2', graceUntil: new Date('2026-11-22T15:00:00.000Z') } })
      .then([
        {
          type: 'api_key.rotated',
          data: { key_id: 'key_1', new_key_id: 'key_2', grace_until: '2026-11-22T15:00:00.000Z' },
        },
      ]);
    given(apiKeyDecider, [
      created,
      {
        type: 'api_key.rotated',
        data: { key_id: 'key_1', new_key_id: 'key_2', grace_until: '2026-11-22T15:00:00.000Z' },
      },
    ])
      .when({ type: 'RotateApiKey', data: { newKeyId: 'key_3', graceUntil: new Date('2026-11-22T16:00:00.000Z') } })
      .thenThrows('conflict');
  });
  it('revokes once; revoking again, or a key that does not exist, is not_found', () => {
    given(apiKeyDecider, [created])
      .when({ type: 'RevokeApiKey', data: { reason: 'owner' } })
      .then([{ type: 'api_key.revoked', data: { key_id: 'key_1', reason: 'owner' } }]);
    given(apiKeyDecider, [created, { type: 'api_key.revoked', data: { key_id: 'key_1', reason: 'owner' } }])
      .when({ type: 'RevokeApiKey', data: { reason: 'admin' } })
      .thenThrows('not_found');
    given(apiKeyDecider)
      .when({ type: 'RevokeApiKey', data: { reason: 'owner' } })
      .thenThrows('not_found');
  });
  it('does not rotate a revoked key', () => {
    given(apiKeyDecider, [created, { type: 'api_key.revoked', data: { key_id: 'key_1', reason: 'owner' } }])
      .when({ type: 'RotateApiKey', data: { newKeyId: 'key_2', graceUntil: new Date() } })
      .thenThrows('not_found');
  });
});
