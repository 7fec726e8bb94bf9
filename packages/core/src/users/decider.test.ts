import { describe, it } from 'vitest';
import { given } from '../../test/given-when-then.ts';
import { type UserEvent, userDecider } from './decider.ts';

const registered: UserEvent = {
  type: 'user.registered',
  data: { user_id: 'user_1', email: 'ada@example.com', name: 'Ada', role: 'member', method: 'admin' },
};

describe('user decider', () => {
  it('registers a new user', () => {
    given(userDecider)
      .when({
        type: 'RegisterUser',
        data: { userId: 'user_1', email: 'ada@example.com', name: 'Ada', role: 'member', method: 'admin' },
      })
      .then([registered]);
  });
  it('refuses to register the same id twice', () => {
    given(userDecider, [registered])
      .when({
        type: 'RegisterUser',
        data: { userId: 'user_1', email: 'x@example.com', name: null, role: 'admin', method: 'admin' },
      })
      .thenThrows('conflict');
  });
  it('changes a role, recording from and to', () => {
    given(userDecider, [registered])
      .when({ type: 'ChangeRole', data: { userId: 'user_1', to: 'admin' } })
      .then([{ type: 'user.role_changed', data: { user_id: 'user_1', from: 'member', to: 'admin' } }]);
  });
  it('writes nothing when the role is already the one asked for', () => {
    given(userDecider, [registered])
      .when({ type: 'ChangeRole', data: { userId: 'user_1', to: 'member' } })
      .then([]);
  });
  it('renames, recording from and to; the same name again writes nothing; null clears it', () => {
    given(userDecider, [registered])
      .when({ type: 'Rename', data: { userId: 'user_1', name: 'Ada L.' } })
      .then([{ type: 'user.renamed', data: { user_id: 'user_1', from: 'Ada', to: 'Ada L.' } }]);
    given(userDecider, [registered])
      .when({ type: 'Rename', data: { userId: 'user_1', name: 'Ada' } })
      .then([]);
    given(userDecider, [registered, { type: 'user.renamed', data: { user_id: 'user_1', from: 'Ada', to: 'Ada L.' } }])
      .when({ type: 'Rename', data: { userId: 'user_1', name: null } })
      .then([{ type: 'user.renamed', data: { user_id: 'user_1', from: 'Ada L.', to: null } }]);
  });
  it('refuses to rename a user who does not exist', () => {
    given(userDecider)
      .when({ type: 'Rename', data: { userId: 'user_1', name: 'X' } })
      .thenThrows('not_found');
  });
  it('disables once, enables once', () => {
    given(userDecider, [registered])
      .when({ type: 'DisableUser', data: { userId: 'user_1' } })
      .then([{ type: 'user.disabled', data: { user_id: 'user_1' } }]);
    const disabled: UserEvent = { type: 'user.disabled', data: { user_id: 'user_1' } };
    given(userDecider, [registered, disabled])
      .when({ type: 'DisableUser', data: { userId: 'user_1' } })
      .then([]);
    given(userDecider, [registered, disabled])
      .when({ type: 'EnableUser', data: { userId: 'user_1' } })
      .then([{ type: 'user.enabled', data: { user_id: 'user_1' } }]);
    given(userDecider, [registered])
      .when({ type: 'EnableUser', data: { userId: 'user_1' } })
      .then([]);
  });
  it('verifies an email once', () => {
    given(userDecider, [registered])
      .when({ type: 'VerifyEmail', data: { userId: 'user_1' } })
      .then([{ type: 'user.email_verified', data: { user_id: 'user_1' } }]);
    given(userDecider, [registered, { type: 'user.email_verified', data: { user_id: 'user_1' } }])
      .when({ type: 'VerifyEmail', data: { userId: 'user_1' } })
      .then([]);
  });
  it('records that a password was set, never the password', () => {
    given(userDecider, [registered])
      .when({ type: 'RecordPasswordSet', data: { userId: 'user_1' } })
      .then([{ type: 'user.password_set', data: { user_id: 'user_1' } }]);
  });
  it('records an invitation', () => {
    given(userDecider, [registered])
      .when({ type: 'InviteUser', data: { userId: 'user_1', linkId: 'ml_1' } })
      .then([{ type: 'user.invited', data: { user_id: 'user_1', link_id: 'ml_1' } }]);
  });
  for (const command of [
    { type: 'ChangeRole', data: { userId: 'user_9', to: 'admin' } },
    { type: 'DisableUser', data: { userId: 'user_9' } },
    { type: 'EnableUser', data: { userId: 'user_9' } },
    { type: 'VerifyEmail', data: { userId: 'user_9' } },
    { type: 'RecordPasswordSet', data: { userId: 'user_9' } },
    { type: 'InviteUser', data: { userId: 'user_9', linkId: 'ml_1' } },
  ] as const) {
    it(`${command.type} on an unknown user is not_found`, () => {
      given(userDecider).when(command).thenThrows('not_found');
    });
  }
});
