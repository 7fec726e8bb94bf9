import type { Database } from '@keyledger/db';
import { type Kysely, sql, type Transaction } from 'kysely';
import { readEvents } from './read.ts';
import type { Projection } from './types.ts';

export interface ProjectionDiff {
  readonly table: string;
  /** Rows in the live table that replaying the log does not produce. */
  readonly unexpected: number;
  /** Rows replaying the log produces that the live table lacks. */
  readonly missing: number;
  readonly samples: { readonly unexpected: unknown[]; readonly missing: unknown[] };
}

export interface ProjectionCheckResult {
  readonly ok: boolean;
  readonly replayed: number;
  readonly tables: readonly ProjectionDiff[];
}

async function replay(
  trx: Transaction<Database>,
  projections: readonly Projection[],
  onProgress?: (replayed: number) => void,
): Promise<number> {
  let after = 0;
  let replayed = 0;
  while (true) {
    const events = await readEvents(trx, { after, limit: 2000 });
    if (events.length === 0) return replayed;
    for (const event of events) {
      for (const p of projections) await p.apply(trx, event);
    }
    replayed += events.length;
    after = events.at(-1)?.seq ?? after;
    onProgress?.(replayed);
  }
}

/**
 * Rebuilds every projection from the log into scratch copies of its tables (temporary tables, which shadow the
 * live ones for this transaction only) and diffs them against the live tables. Read-only: it runs in one
 * repeatable-read snapshot and rolls back, so the log and the tables are compared at the same instant.
 */
export async function checkProjections(
  db: Kysely<Database>,
  projections: readonly Projection[],
  options: { onProgress?: (replayed: number) => void } = {},
): Promise<ProjectionCheckResult> {
  const tables = projections.flatMap((p) => p.tables);
  const rollback = new Error('rollback');
  let result: ProjectionCheckResult | undefined;
  await db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      for (const t of tables) {
        await sql`create temporary table ${sql.id(t)} (like ${sql.table(`public.${t}`)} including all) on commit drop`.execute(
          trx,
        );
      }
      const replayed = await replay(trx, projections, options.onProgress);
      const diffs: ProjectionDiff[] = [];
      for (const t of tables) {
        const live = sql.table(`public.${t}`);
        const scratch = sql.table(`pg_temp.${t}`);
        const unexpected = await sql<
          Record<string, unknown>
        >`select * from ${live} except all select * from ${scratch}`.execute(trx);
        const missing = await sql<
          Record<string, unknown>
        >`select * from ${scratch} except all select * from ${live}`.execute(trx);
        diffs.push({
          table: t,
          unexpected: unexpected.rows.length,
          missing: missing.rows.length,
          samples: { unexpected: unexpected.rows.slice(0, 5), missing: missing.rows.slice(0, 5) },
        });
      }
      result = { ok: diffs.every((d) => d.unexpected === 0 && d.missing === 0), replayed, tables: diffs };
      throw rollback;
    })
    .catch((error: unknown) => {
      if (error !== rollback) throw error;
    });
  return result as ProjectionCheckResult;
}

/**
 * Empties every projection table and replays the whole log into it, holding the chain lock so no append lands
 * half-way. The live tables change only if the whole rebuild commits.
 */
export async function rebuildProjections(
  db: Kysely<Database>,
  projections: readonly Projection[],
  options: { onProgress?: (replayed: number) => void } = {},
): Promise<{ replayed: number }> {
  return db.transaction().execute(async (trx) => {
    await sql`select 1 from chain_head where id for update`.execute(trx);
    for (const t of [...projections.flatMap((p) => p.tables)].reverse())
      await sql`delete from ${sql.table(t)}`.execute(trx);
    return { replayed: await replay(trx, projections, options.onProgress) };
  });
}
