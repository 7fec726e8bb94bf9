import { type Role, SCOPES, type Scope } from '../schemas.ts';

/** What a role may do: admins everything; members everything but the users:* scopes (over their own things). */
export function roleScopes(role: Role): Scope[] {
  return role === 'admin' ? [...SCOPES] : SCOPES.filter((s) => !s.startsWith('users:'));
}

export const ENV_READ_SCOPES: Scope[] = SCOPES.filter((s) => s.endsWith(':read'));

/** Who is calling, computed per request from the current projections (a promotion applies at once). */
export type Principal =
  | {
      readonly kind: 'user';
      readonly auth: 'session';
      readonly userId: string;
      readonly email: string;
      readonly name: string | null;
      readonly createdAt: Date;
      readonly role: Role;
      readonly sessionId: string;
      readonly sessionKind: 'browser' | 'api';
      readonly sessionExpiresAt: Date;
      readonly scopes: readonly Scope[];
    }
  | {
      readonly kind: 'user';
      readonly auth: 'api_key';
      readonly userId: string;
      readonly email: string;
      readonly name: string | null;
      readonly createdAt: Date;
      readonly role: Role;
      readonly keyId: string;
      readonly scopes: readonly Scope[];
    }
  | {
      readonly kind: 'env';
      readonly auth: 'env_key';
      /** `env:admin` or `env:<first 8 hex of the key's SHA-256>`. */
      readonly id: string;
      readonly role: Role;
      readonly scopes: readonly Scope[];
    };

export function principalId(p: Principal): string {
  return p.kind === 'env' ? p.id : p.userId;
}

export function hasScope(p: Principal, scope: Scope): boolean {
  return p.scopes.includes(scope);
}

/** The event meta actor for a principal: who did it. */
export function actorOf(p: Principal | null): {
  type: 'user' | 'api_key' | 'env_key' | 'anonymous';
  id: string | null;
} {
  if (!p) return { type: 'anonymous', id: null };
  if (p.kind === 'env') return { type: 'env_key', id: p.id };
  return p.auth === 'api_key' ? { type: 'api_key', id: p.keyId } : { type: 'user', id: p.userId };
}
