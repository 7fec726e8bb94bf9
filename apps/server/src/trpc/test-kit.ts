import { DomainError, type Principal } from '@keyledger/core';
import { TRPCError } from '@trpc/server';
import { sql } from 'kysely';
import { expect } from 'vitest';
import type { CredentialSource } from '../http/variables.ts';
import type { TestDeps } from '../testing.ts';
import { createContextInner } from './context.ts';
import { createCallerFactory } from './init.ts';
import { appRouter } from './router.ts';

/** Helpers for the router tests: callers as a given credential, error assertions, and the secret check. */
const createCaller = createCallerFactory(appRouter);

/** Resolves a token exactly as the HTTP pipeline does. */
export async function principalOf(deps: TestDeps, token: string): Promise<Principal> {
  const result = await deps.authenticator.authenticate(token, { ip: '127.0.0.1' });
  if (!result.ok) throw new Error(`test token refused: ${result.reason}`);
  return result.principal;
}

export interface CallAs {
  readonly principal?: Principal | null;
  readonly credential?: string | null;
  readonly credentialSource?: CredentialSource | null;
  readonly clientIp?: string;
}

/** A caller with its own response headers, so Set-Cookie and Retry-After can be inspected. */
export function callerFor(deps: TestDeps, as: CallAs = {}) {
  const resHeaders = new Headers();
  const ctx = createContextInner({
    deps,
    principal: as.principal ?? null,
    credential: as.credential ?? null,
    credentialSource: as.credentialSource ?? null,
    clientIp: as.clientIp ?? '127.0.0.1',
    userAgent: 'vitest',
    resHeaders,
  });
  return { caller: createCaller(ctx), resHeaders, ctx };
}

/** A caller authenticated by `token` (a Bearer session token or an API key) through the real authenticator. */
export async function callerWithToken(deps: TestDeps, token: string, source: CredentialSource = 'bearer') {
  return callerFor(deps, { principal: await principalOf(deps, token), credential: token, credentialSource: source });
}

type TrpcCode = TRPCError['code'];

/** Awaits a rejection and checks its tRPC code; returns the error for further checks. */
export async function expectTrpcError(promise: Promise<unknown>, code: TrpcCode): Promise<TRPCError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(TRPCError);
  const error = caught as TRPCError;
  expect(error.code, error.message).toBe(code);
  return error;
}

/** BAD_REQUEST naming the field: in the validation issue's path, or in the domain error's details. */
export async function expectBadRequest(promise: Promise<unknown>, field: string): Promise<TRPCError> {
  const error = await expectTrpcError(promise, 'BAD_REQUEST');
  const cause = error.cause as { issues?: { path: PropertyKey[]; keys?: string[] }[] } | undefined;
  if (cause instanceof DomainError) {
    // Core's policy messages are prose ("Password must be at least 8 characters"); the field is in the details.
    expect(cause.details.field).toBe(field);
  } else {
    // The issue's path starts at the field (an unknown field is named in `keys`).
    const named = cause?.issues?.some((i) => i.path[0] === field || (i.keys ?? []).includes(field));
    expect(named, error.message).toBe(true);
    expect(error.message).toContain(`"${field}"`);
  }
  return error;
}

/** The domain reason (REST `code`) behind a tRPC error, as the error formatter reports it. */
export function reasonOf(error: TRPCError): unknown {
  return error.cause instanceof DomainError ? (error.cause.details.reason ?? error.cause.code) : undefined;
}

/** Every event's data and meta as text: no secret created by a test may appear in it. */
export async function eventsText(deps: TestDeps): Promise<string> {
  const rows = await sql<{ t: string }>`select data::text || meta::text as t from events order by seq`.execute(
    deps.t.db,
  );
  return rows.rows.map((r) => r.t).join('\n');
}

export async function expectNoSecretsInEvents(deps: TestDeps, secrets: readonly string[]): Promise<void> {
  const text = await eventsText(deps);
  for (const secret of secrets) expect(text.includes(secret), 'a secret appears in the event log').toBe(false);
}

/** The value of the `name` cookie set by a Set-Cookie header, and its attributes. */
export function parseSetCookie(headers: Headers, name: string): { value: string; attributes: string[] } | undefined {
  for (const line of headers.getSetCookie()) {
    const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    if (pair.slice(0, eq) === name) return { value: pair.slice(eq + 1), attributes };
  }
  return undefined;
}
