import { DomainError } from '../errors.ts';
import type { EventOf } from '../event-store/catalogue.ts';
import type { Decider } from '../event-store/decider.ts';
import type { Role } from '../schemas.ts';
import type {
  userDisabled,
  userEmailVerified,
  userEnabled,
  userInvited,
  userPasswordSet,
  userRegistered,
  userRenamed,
  userRoleChanged,
} from './events.ts';

export type UserEvent = EventOf<
  | typeof userRegistered
  | typeof userInvited
  | typeof userEmailVerified
  | typeof userPasswordSet
  | typeof userRoleChanged
  | typeof userRenamed
  | typeof userDisabled
  | typeof userEnabled
>;

export interface User {
  readonly id: string;
  readonly email: string;
  readonly name: string | null;
  readonly role: Role;
  readonly disabled: boolean;
  readonly emailVerified: boolean;
  readonly hasPassword: boolean;
}
export type UserState = User | null;

export type UserCommand =
  | {
      type: 'RegisterUser';
      data: {
        userId: string;
        email: string;
        name: string | null;
        role: Role;
        method: 'password' | 'magic_link' | 'oauth' | 'admin' | 'bootstrap';
      };
    }
  | { type: 'InviteUser'; data: { userId: string; linkId: string } }
  | { type: 'VerifyEmail'; data: { userId: string } }
  | { type: 'RecordPasswordSet'; data: { userId: string } }
  | { type: 'ChangeRole'; data: { userId: string; to: Role } }
  | { type: 'Rename'; data: { userId: string; name: string | null } }
  | { type: 'DisableUser'; data: { userId: string } }
  | { type: 'EnableUser'; data: { userId: string } };

const notFound = () => new DomainError('not_found', 'User not found');

function existing(state: UserState): User {
  if (!state) throw notFound();
  return state;
}

export const userDecider: Decider<UserState, UserCommand, UserEvent> = {
  initialState: () => null,

  evolve(state, event) {
    switch (event.type) {
      case 'user.registered':
        return {
          id: event.data.user_id,
          email: event.data.email,
          name: event.data.name,
          role: event.data.role,
          disabled: false,
          emailVerified: false,
          hasPassword: false,
        };
      case 'user.invited':
        return state;
      case 'user.email_verified':
        return state && { ...state, emailVerified: true };
      case 'user.password_set':
        return state && { ...state, hasPassword: true };
      case 'user.role_changed':
        return state && { ...state, role: event.data.to };
      case 'user.renamed':
        return state && { ...state, name: event.data.to };
      case 'user.disabled':
        return state && { ...state, disabled: true };
      case 'user.enabled':
        return state && { ...state, disabled: false };
      default: {
        const unhandled: never = event;
        return unhandled;
      }
    }
  },

  decide(command, state) {
    switch (command.type) {
      case 'RegisterUser': {
        if (state) throw new DomainError('conflict', 'A user with this id already exists');
        const { userId, email, name, role, method } = command.data;
        return [{ type: 'user.registered', data: { user_id: userId, email, name, role, method } }];
      }
      case 'InviteUser':
        existing(state);
        return [{ type: 'user.invited', data: { user_id: command.data.userId, link_id: command.data.linkId } }];
      case 'VerifyEmail':
        return existing(state).emailVerified
          ? []
          : [{ type: 'user.email_verified', data: { user_id: command.data.userId } }];
      case 'RecordPasswordSet':
        existing(state);
        return [{ type: 'user.password_set', data: { user_id: command.data.userId } }];
      case 'ChangeRole': {
        const user = existing(state);
        if (user.role === command.data.to) return [];
        return [{ type: 'user.role_changed', data: { user_id: user.id, from: user.role, to: command.data.to } }];
      }
      case 'Rename': {
        const user = existing(state);
        if (user.name === command.data.name) return [];
        return [{ type: 'user.renamed', data: { user_id: user.id, from: user.name, to: command.data.name } }];
      }
      case 'DisableUser':
        return existing(state).disabled ? [] : [{ type: 'user.disabled', data: { user_id: command.data.userId } }];
      case 'EnableUser':
        return existing(state).disabled ? [{ type: 'user.enabled', data: { user_id: command.data.userId } }] : [];
      default: {
        const unhandled: never = command;
        return unhandled;
      }
    }
  },
};

export const userStream = (userId: string) => `user-${userId}`;
