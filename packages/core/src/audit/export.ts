import type { Database } from '@keyledger/db';
import { stringify } from 'csv-stringify/sync';
import type { Kysely } from 'kysely';
import type { Principal } from '../auth/principal.ts';
import { toHex } from '../event-store/canonical.ts';
import type { StoredEvent } from '../event-store/types.ts';
import { type AuditFilter, streamAuditEvents } from './query.ts';

/** An event as every API shows it: hashes in hex, timestamps ISO 8601 with milliseconds. */
export function eventJson(e: StoredEvent) {
  return {
    seq: e.seq,
    id: e.id,
    stream: e.stream,
    stream_version: e.stream_version,
    type: e.type,
    schema_version: e.schema_version,
    data: e.data,
    meta: e.meta,
    occurred_at: e.occurred_at.toISOString(),
    prev_hash: toHex(e.prev_hash),
    hash: toHex(e.hash),
  };
}

export const CSV_COLUMNS = [
  'seq',
  'occurred_at',
  'type',
  'stream',
  'actor_type',
  'actor_id',
  'ip',
  'user_agent',
  'request_id',
  'data',
  'hash',
] as const;

function csvRow(e: StoredEvent): string {
  return stringify([
    [
      e.seq,
      e.occurred_at.toISOString(),
      e.type,
      e.stream,
      e.meta.actor.type,
      e.meta.actor.id ?? '',
      e.meta.ip ?? '',
      e.meta.user_agent ?? '',
      e.meta.request_id ?? '',
      JSON.stringify(e.data),
      toHex(e.hash),
    ],
  ]);
}

/** The export as text chunks (JSON Lines or CSV with a header), produced a page at a time: constant memory. */
export async function* exportAuditEvents(
  db: Kysely<Database>,
  viewer: Principal,
  filter: AuditFilter,
  format: 'jsonl' | 'csv',
): AsyncGenerator<string> {
  if (format === 'csv') yield stringify([[...CSV_COLUMNS]]);
  let chunk = '';
  for await (const e of streamAuditEvents(db, viewer, filter)) {
    chunk += format === 'csv' ? csvRow(e) : `${JSON.stringify(eventJson(e))}\n`;
    if (chunk.length >= 64 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}
