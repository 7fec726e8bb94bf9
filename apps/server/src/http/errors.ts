import type { DomainErrorCode } from '@keyledger/core';

/**
 * The one table from domain error codes to REST statuses and tRPC codes. Every surface maps errors through it,
 * so the same failure answers the same way everywhere.
 */
export const ERROR_TABLE: Record<DomainErrorCode, { status: 400 | 401 | 403 | 404 | 409 | 429 | 503; trpc: string }> = {
  invalid_input: { status: 400, trpc: 'BAD_REQUEST' },
  invalid_event: { status: 400, trpc: 'BAD_REQUEST' },
  unauthorized: { status: 401, trpc: 'UNAUTHORIZED' },
  forbidden: { status: 403, trpc: 'FORBIDDEN' },
  not_found: { status: 404, trpc: 'NOT_FOUND' },
  conflict: { status: 409, trpc: 'CONFLICT' },
  concurrency_conflict: { status: 409, trpc: 'CONFLICT' },
  rate_limited: { status: 429, trpc: 'TOO_MANY_REQUESTS' },
  unavailable: { status: 503, trpc: 'SERVICE_UNAVAILABLE' },
};

const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  '57P01',
  '57P02',
  '57P03',
  '08006',
  '08001',
  '08003',
  '08004',
]);

/** Whether an error means the database cannot be reached (answered 503, not 500). */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_ERRORS.has(code)) return true;
    if (e instanceof Error && /Connection terminated|connection timeout|PGlite is closed/i.test(e.message)) return true;
  }
  return false;
}

export interface ErrorBody {
  error: string;
  code: string;
  request_id: string;
}

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 503,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A DomainError's REST status and public code: `details.reason` names the case when there is one. */
export function restStatusOf(error: { code: DomainErrorCode; details: Readonly<Record<string, unknown>> }): {
  status: (typeof ERROR_TABLE)[DomainErrorCode]['status'];
  code: string;
} {
  const reason = error.details.reason;
  return { status: ERROR_TABLE[error.code].status, code: typeof reason === 'string' ? reason : error.code };
}
