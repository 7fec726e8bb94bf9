import { DomainError, type Scope } from '@keyledger/core';
import { initTRPC, TRPCError } from '@trpc/server';
import { ERROR_TABLE, restStatusOf } from '../http/errors.ts';
import type { TrpcContext } from './context.ts';

type TrpcCode = ConstructorParameters<typeof TRPCError>[0]['code'];

/** The one place procedures are built. DomainErrors become tRPC errors through the same table as REST. */
const t = initTRPC.context<TrpcContext>().create({
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    const code = cause instanceof DomainError ? restStatusOf(cause).code : undefined;
    const field = cause instanceof DomainError && typeof cause.details.field === 'string' ? cause.details.field : null;
    // Never a stack on the wire.
    const { stack: _stack, ...data } = shape.data;
    return { ...shape, data: { ...data, keyledgerCode: code ?? null, field } };
  },
});

export function toTrpcError(error: unknown): unknown {
  if (error instanceof DomainError) {
    return new TRPCError({ code: ERROR_TABLE[error.code].trpc as TrpcCode, message: error.message, cause: error });
  }
  return error;
}

/** Maps domain errors once, at the edge, keeping the cause. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof DomainError) {
    throw toTrpcError(result.error.cause);
  }
  return result;
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(mapErrors);

export const authedProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.principal) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Authentication required' });
  return next({ ctx: { ...ctx, principal: ctx.principal } });
});

/** A procedure that needs one scope; a missing scope is FORBIDDEN naming it. */
export function scopedProcedure(scope: Scope) {
  return authedProcedure.use(({ ctx, next, path }) => {
    if (!ctx.principal.scopes.includes(scope)) {
      const p = ctx.principal;
      const id = p.kind === 'env' ? p.id : p.userId;
      // Logged in the background: the refusal does not wait on the write, and a failed write does not change it.
      void ctx.deps.rollup
        .record(
          'access.denied',
          `scope:${id}`,
          { principal: id, reason: 'scope', scope, resource: `trpc:${path}` },
          ctx.meta,
        )
        .catch(() => {});
      throw new TRPCError({ code: 'FORBIDDEN', message: `This credential lacks the ${scope} scope` });
    }
    return next();
  });
}

export const adminProcedure = scopedProcedure('users:write');
