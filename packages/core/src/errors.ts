/**
 * The one domain error type. Every failure the core reports to a caller is a DomainError with a stable snake_case
 * `code`; the server maps codes to tRPC codes and REST statuses in one table. Subclasses only add typed fields.
 */
export type DomainErrorCode =
  | 'concurrency_conflict'
  | 'invalid_event'
  | 'invalid_input'
  | 'not_found'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'rate_limited'
  | 'unavailable';

export class DomainError extends Error {
  override readonly name: string = 'DomainError';
  readonly code: DomainErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: DomainErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** A stream was not at the version the command expected: someone else wrote first. Retry from fresh state. */
export class ConcurrencyError extends DomainError {
  override readonly name = 'ConcurrencyError';
  constructor(
    readonly stream: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super('concurrency_conflict', `stream ${stream} is at version ${actualVersion}, expected ${expectedVersion}`, {
      details: { stream, expected_version: expectedVersion, actual_version: actualVersion },
    });
  }
}

export type InvalidEventReason = 'unknown_type' | 'schema' | 'too_large' | 'secret' | 'not_canonical' | 'empty';

/** An event was refused before anything was written. */
export class InvalidEventError extends DomainError {
  override readonly name = 'InvalidEventError';
  constructor(
    readonly reason: InvalidEventReason,
    message: string,
    options: { cause?: unknown; type?: string } = {},
  ) {
    super('invalid_event', message, { cause: options.cause, details: { reason, type: options.type } });
  }
}
