import { z } from '@hono/zod-openapi';
import {
  type AuditFilter,
  NoteError,
  openCheckpoint,
  parseVerifierKey,
  readLatestExportedCheckpoint,
  verifierKeyOf,
  verifyChain,
} from '@keyledger/core';
import type { ServerDeps } from './deps.ts';
import { Timestamp } from './rest/schemas.ts';

/**
 * What REST `/v1/audit/*` and the tRPC `audit` router share: the event as served, the verify result, filters, and
 * verification against the latest exported checkpoint.
 */

export const Event = z
  .object({
    seq: z.number().int(),
    id: z.string(),
    stream: z.string(),
    stream_version: z.number().int(),
    type: z.string(),
    schema_version: z.number().int(),
    data: z.record(z.string(), z.unknown()),
    meta: z.object({
      actor: z.object({ type: z.string(), id: z.string().nullable() }),
      via: z.string(),
      ip: z.string().nullable(),
      user_agent: z.string().nullable(),
      request_id: z.string().nullable(),
    }),
    occurred_at: Timestamp,
    prev_hash: z.string().openapi({ description: 'hex' }),
    hash: z.string().openapi({ description: 'hex' }),
  })
  .openapi('Event');
export type AuditEvent = z.infer<typeof Event>;

export const VerifyResult = z
  .object({
    ok: z.boolean(),
    checked: z.number().int(),
    head: z.object({ seq: z.number().int(), hash: z.string() }).nullable(),
    first_bad_seq: z.number().int().nullable(),
    reason: z.string().nullable(),
    checkpoint: z.object({ size: z.number().int(), ok: z.boolean() }).nullable(),
  })
  .openapi('VerifyResult');

/** An exact event type, or a prefix written `api_key.*`. */
export const TYPE_PATTERN = /^[a-z_]+(\.[a-z_]+)*(\.\*)?$/;

/** `type` as a comma-separated list (REST, the CLI) or already a list (tRPC). */
export function splitTypes(raw: string | readonly string[] | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  return (typeof raw === 'string' ? raw.split(',') : raw).map((t) => t.trim()).filter(Boolean);
}

/** The filter fields both surfaces accept, with the types already split and checked, as core's AuditFilter. */
export function auditFilterOf(q: {
  types?: string[] | undefined;
  actor?: string | undefined;
  subject?: string | undefined;
  stream?: string | undefined;
  ip?: string | undefined;
  outcome?: 'success' | 'failure' | undefined;
  since?: string | undefined;
  until?: string | undefined;
}): AuditFilter {
  return {
    types: q.types,
    actor: q.actor,
    subject: q.subject,
    stream: q.stream,
    ip: q.ip,
    outcome: q.outcome,
    since: q.since ? new Date(q.since) : undefined,
    until: q.until ? new Date(q.until) : undefined,
  };
}

/**
 * Walks the whole chain and holds it to the latest checkpoint exported outside the database (DESIGN §5: `ok` only
 * when both hold). An exported note that does not open with this server's key is `checkpoint_invalid`.
 */
export async function verifyAgainstLatestCheckpoint(
  deps: Pick<ServerDeps, 'core' | 'checkpoints'>,
  signal?: AbortSignal,
  onProgress?: (progress: { checked: number; total: number }) => void,
): Promise<z.infer<typeof VerifyResult>> {
  const note = await readLatestExportedCheckpoint(deps.checkpoints.exportDir);
  let claim: { size: number; rootHash: Uint8Array } | undefined;
  if (note) {
    try {
      claim = openCheckpoint(note, parseVerifierKey(verifierKeyOf(deps.checkpoints.signer)));
    } catch (error) {
      if (!(error instanceof NoteError)) throw error;
      const result = await verifyChain(deps.core.db, { signal, onProgress });
      return { ...result, ok: false, reason: 'checkpoint_invalid', checkpoint: { size: 0, ok: false } };
    }
  }
  return verifyChain(deps.core.db, { checkpoint: claim, signal, onProgress });
}
