import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../src/testing.ts';

let t: TestDb;
beforeEach(async () => {
  t = await createTestDb();
  await sql`insert into events (seq, id, stream, stream_version, type, schema_version, data, meta, occurred_at, prev_hash, hash)
    values (1, '01930000-0000-7000-8000-000000000001', 's-1', 1, 'test.happened', 1, '{}', '{}', now(),
            ${new Uint8Array(32)}, ${new Uint8Array(32).fill(1)})`.execute(t.db);
});
afterEach(async () => {
  await t.close();
});

const mutations = {
  UPDATE: sql`update events set type = 'x'`,
  DELETE: sql`delete from events`,
  TRUNCATE: sql`truncate events`,
};

describe('events is append-only', () => {
  for (const [op, statement] of Object.entries(mutations)) {
    it(`rejects ${op} as the owner`, async () => {
      await expect(statement.execute(t.db)).rejects.toThrow(/append-only/);
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from events`.execute(t.db);
      expect(rows[0]?.n).toBe(1);
    });

    it(`rejects ${op} as the application role`, async () => {
      const error = await t.db
        .connection()
        .execute(async (conn) => {
          await sql`set role ${sql.id(t.appRole)}`.execute(conn);
          try {
            await statement.execute(conn);
          } finally {
            await sql`reset role`.execute(conn);
          }
        })
        .catch((e: unknown) => e);
      // The role lacks the privilege outright; the trigger would stop it even if it had it.
      expect(String(error)).toMatch(/permission denied|append-only/);
    });
  }

  it('lets the application role read and append', async () => {
    await t.db.connection().execute(async (conn) => {
      await sql`set role ${sql.id(t.appRole)}`.execute(conn);
      try {
        await sql`insert into events (seq, id, stream, stream_version, type, schema_version, data, meta, occurred_at, prev_hash, hash)
          values (2, '01930000-0000-7000-8000-000000000002', 's-1', 2, 'test.happened', 1, '{}', '{}', now(),
                  ${new Uint8Array(32).fill(1)}, ${new Uint8Array(32).fill(2)})`.execute(conn);
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from events`.execute(conn);
        expect(rows[0]?.n).toBe(2);
      } finally {
        await sql`reset role`.execute(conn);
      }
    });
  });

  it('rejects UPDATE and DELETE on checkpoints too', async () => {
    await sql`insert into checkpoints (size, head_hash, origin, note, created_at)
      values (1, ${new Uint8Array(32)}, 'o', 'n', now())`.execute(t.db);
    await expect(sql`update checkpoints set note = 'forged'`.execute(t.db)).rejects.toThrow(/append-only/);
    await expect(sql`delete from checkpoints`.execute(t.db)).rejects.toThrow(/append-only/);
  });
});
