import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyBinaryOut } from './raw-bytes.ts';
import { createTestDb, type TestDb, testDatabaseUrl } from './testing.ts';

/**
 * copyBinaryOut on the database createTestDb gives (PGlite, or Postgres under TEST_DATABASE_URL): every result is
 * decoded with the small binary COPY parser below and held to what an ordinary Kysely select of the same rows says.
 */

// ---- A binary COPY reader: signature, flags, header extension, rows of length-prefixed fields, -1 trailer. ----

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** The whole output of a COPY with no rows: signature, flags 0, extension length 0, trailer -1. */
const EMPTY_COPY = Buffer.concat([SIGNATURE, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])]);

type Field = Buffer | null;

/** The rows of a binary COPY output, each a list of raw field values (null for NULL). Throws on any malformation. */
function parseCopy(data: Buffer): Field[][] {
  if (data.length < 21) throw new Error(`COPY data too short: ${data.length} bytes`);
  if (!data.subarray(0, 11).equals(SIGNATURE))
    throw new Error(`bad signature: ${data.subarray(0, 11).toString('hex')}`);
  const flags = data.readInt32BE(11);
  if (flags !== 0) throw new Error(`unexpected flags ${flags}`);
  let at = 15 + 4 + data.readInt32BE(15);
  const rows: Field[][] = [];
  for (;;) {
    if (at + 2 > data.length) throw new Error(`truncated at ${at}: no field count / trailer`);
    const count = data.readInt16BE(at);
    at += 2;
    if (count === -1) break;
    if (count < 0) throw new Error(`bad field count ${count} at ${at - 2}`);
    const row: Field[] = [];
    for (let f = 0; f < count; f++) {
      if (at + 4 > data.length) throw new Error(`truncated at ${at}: no field length`);
      const length = data.readInt32BE(at);
      at += 4;
      if (length === -1) {
        row.push(null);
        continue;
      }
      if (length < 0 || at + length > data.length) throw new Error(`bad field length ${length} at ${at - 4}`);
      row.push(data.subarray(at, at + length));
      at += length;
    }
    rows.push(row);
  }
  if (at !== data.length) throw new Error(`${data.length - at} bytes after the trailer`);
  return rows;
}

/** A fixed-size field's bytes, checked for their size. */
function sized(f: Buffer, size: number): Buffer {
  if (f.length !== size) throw new Error(`expected a ${size}-byte field, got ${f.length} bytes`);
  return f;
}
const int4 = (f: Field) => (f === null ? null : sized(f, 4).readInt32BE(0));
const int8 = (f: Field) => (f === null ? null : sized(f, 8).readBigInt64BE(0));
const text = (f: Field) => (f === null ? null : f.toString('utf8'));
/** jsonb's send form: a version byte (1), then the jsonb's text. */
const jsonb = (f: Field) => {
  if (f === null) return null;
  if (f[0] !== 1) throw new Error(`jsonb version byte ${f[0]}, expected 1`);
  return f.subarray(1).toString('utf8');
};
const bytea = (f: Field) => (f === null ? null : Buffer.from(f));
/** A bytea as a driver returns it (a Buffer from pg, a Uint8Array from PGlite), as a Buffer. */
const asBuffer = (v: Uint8Array | null) => (v === null ? null : Buffer.from(v));

/** Two byteas (or NULLs) are equal; Buffer.equals, as vitest's toEqual is slow on big buffers and prints them. */
function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}

/** copyBinaryOut, which must answer (db is one createDb made). */
async function copy(db: Parameters<typeof copyBinaryOut>[0], query: string, reuse?: Buffer): Promise<Buffer> {
  const out = await copyBinaryOut(db, query, reuse);
  if (out === null) throw new Error('copyBinaryOut returned null for a createDb instance');
  return out;
}

// ---- Fixtures ----

/** Bytes that look like protocol messages and COPY framing: CopyDone, ErrorResponse, ReadyForQuery, a trailer. */
const FRAMING = Buffer.concat([
  Buffer.from([0x63, 0, 0, 0, 4]), // CopyDone
  Buffer.from([0x45, 0, 0, 0, 5, 0]), // ErrorResponse
  Buffer.from([0x5a, 0, 0, 0, 5, 0x49]), // ReadyForQuery
  Buffer.from([0x64, 0, 0, 0, 4]), // empty CopyData
  Buffer.from([0x43, 0, 0, 0, 8, 0x43, 0x4f, 0x50, 0x59]), // CommandComplete "COPY"
  SIGNATURE,
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // -1 lengths / trailer
]);
/** The same kind of thing as text (no NUL: text cannot hold one). */
const FRAMING_TEXT = 'c\u0001\u0002\u0003\u0004E\u007fZ\u0005Id\u0004\u00ff\u00ff PGCOPY\n\r\n tab\there \\N \\x00';
const BIG_BYTEA = randomBytes(300_000);

interface ScratchRow {
  id: string;
  t: string | null;
  j: string | null;
  b: Buffer | null;
  n: number | null;
}

const SCRATCH: ScratchRow[] = [
  { id: '-42', t: 'plain', j: '{"a": 1}', b: Buffer.from([1, 2, 3]), n: 7 },
  { id: '1', t: 'Zoë 😀', j: '{"a": [1, 2, {"b": "Zoë 😀"}], "n": null}', b: FRAMING, n: null },
  { id: '2', t: FRAMING_TEXT, j: '"c\\u0001\\u0004 😀"', b: Buffer.alloc(0), n: -2147483648 },
  { id: '3', t: '', j: null, b: null, n: 2147483647 },
  { id: '4', t: null, j: '[]', b: BIG_BYTEA, n: 0 },
  { id: '9007199254740993', t: 'x'.repeat(70_000), j: '{"big": 9007199254740993}', b: FRAMING, n: 1 },
];

const SCRATCH_SELECT = 'select id, t, j, b, n from raw_bytes_scratch order by id';

/** Rows of varying length, in order: `i` (int4) and `s` (text, 100 to ~900 bytes). */
function bigQuery(rows: number): string {
  return `select i, repeat(md5(i::text), 3 + i % 25) || '😀' as s from generate_series(1, ${rows}) i order by i`;
}
function expectBigRows(data: Buffer, rows: number): void {
  const decoded = parseCopy(data);
  expect(decoded.length).toBe(rows);
  // Every row's number is its position: none missing, repeated or out of order. (The big-result test also
  // compares every value with an ordinary select.)
  decoded.forEach((row, k) => {
    expect(row.length).toBe(2);
    expect(int4(row[0]!)).toBe(k + 1);
  });
}

/** The backend createTestDb gives in this run (checked against the handle below). */
const DIALECT = testDatabaseUrl() ? 'postgres' : 'pglite';

let t: TestDb;

beforeAll(async () => {
  t = await createTestDb();
  expect(t.dialect).toBe(DIALECT);
  await sql`create table raw_bytes_scratch (id int8 primary key, t text, j jsonb, b bytea, n int4)`.execute(t.db);
  for (const row of SCRATCH) {
    await sql`insert into raw_bytes_scratch (id, t, j, b, n)
      values (${row.id}::int8, ${row.t}, ${row.j}::jsonb, ${row.b === null ? null : new Uint8Array(row.b)}, ${row.n})`.execute(
      t.db,
    );
  }
});

afterAll(async () => {
  await t?.close();
});

describe('copyBinaryOut', () => {
  it('returns exactly the rows of a query, each value in its binary form (int8, text, jsonb, bytea, NULL)', async () => {
    const data = await copy(t.db, SCRATCH_SELECT);
    const rows = parseCopy(data);

    const { rows: expected } = await sql<{
      id: string;
      t: string | null;
      j: string | null;
      jv: unknown;
      b: Uint8Array | null;
      n: number | null;
    }>`select id::text as id, t, j::text as j, j as jv, b, n from raw_bytes_scratch order by id`.execute(t.db);

    expect(expected.length).toBe(SCRATCH.length);
    expect(rows.length).toBe(expected.length);
    rows.forEach((row, k) => {
      const want = expected[k]!;
      expect(row.length).toBe(5);
      const [id, tx, j, b, n] = row as [Field, Field, Field, Field, Field];
      expect(int8(id)).toBe(BigInt(want.id));
      expect(text(tx)).toBe(want.t);
      expect(jsonb(j)).toBe(want.j);
      if (want.j !== null) expect(JSON.parse(jsonb(j)!)).toEqual(want.jv);
      expect(sameBytes(bytea(b), asBuffer(want.b))).toBe(true);
      expect(int4(n)).toBe(want.n);
    });

    // And the values are the ones inserted (the normal select is not wrong in the same way).
    const byId = [...SCRATCH].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    rows.forEach((row, k) => {
      const want = byId[k]!;
      expect(int8(row[0]!)).toBe(BigInt(want.id));
      expect(text(row[1]!)).toBe(want.t);
      expect(sameBytes(bytea(row[3]!), want.b)).toBe(true);
      expect(int4(row[4]!)).toBe(want.n);
    });
    // NULL and empty are told apart: '' and an empty bytea are length 0, NULL is -1.
    expect(rows.find((r) => int8(r[0]!) === 3n)?.[1]).toEqual(Buffer.alloc(0));
    expect(rows.find((r) => int8(r[0]!) === 3n)?.[3]).toBeNull();
    expect(rows.find((r) => int8(r[0]!) === 2n)?.[3]).toEqual(Buffer.alloc(0));
  });

  it('returns a big result (20,000 rows, megabytes) complete and in order', async () => {
    const rows = 20_000;
    const query = bigQuery(rows);
    const data = await copy(t.db, query);
    expect(data.length).toBeGreaterThan(5_000_000);
    const decoded = parseCopy(data);
    const { rows: expected } = await sql<{ i: number; s: string }>`${sql.raw(query)}`.execute(t.db);
    expect(expected.length).toBe(rows);
    expect(decoded.length).toBe(rows);
    for (let k = 0; k < rows; k++) {
      const row = decoded[k]!;
      const want = expected[k]!;
      if (row.length !== 2 || int4(row[0]!) !== want.i || text(row[1]!) !== want.s) {
        expect({ k, i: int4(row[0]!), s: text(row[1]!), fields: row.length }).toEqual({
          k,
          i: want.i,
          s: want.s,
          fields: 2,
        });
      }
    }
  });

  it('runs inside a Kysely transaction and sees its uncommitted rows', async () => {
    const query = 'select id, t from raw_bytes_scratch where id between 1000 and 1999 order by id';
    const rollback = new Error('roll back');
    await expect(
      t.db.transaction().execute(async (trx) => {
        await sql`insert into raw_bytes_scratch (id, t) values (1000, 'in trx'), (1001, 'Zoë in trx')`.execute(trx);
        const rows = parseCopy(await copy(trx, query));
        expect(rows.map((r) => [int8(r[0]!), text(r[1]!)])).toEqual([
          [1000n, 'in trx'],
          [1001n, 'Zoë in trx'],
        ]);
        if (DIALECT === 'postgres') {
          // Another connection of the pool does not see them: the COPY above really ran in the transaction.
          expect(parseCopy(await copy(t.db, query))).toEqual([]);
        }
        // The transaction still works after the COPY.
        await sql`insert into raw_bytes_scratch (id, t) values (1002, 'after copy')`.execute(trx);
        expect(parseCopy(await copy(trx, query)).map((r) => int8(r[0]!))).toEqual([1000n, 1001n, 1002n]);
        throw rollback;
      }),
    ).rejects.toBe(rollback);
    // Rolled back with the transaction.
    expect(parseCopy(await copy(t.db, query))).toEqual([]);
  });

  describe('errors', () => {
    /** Runs `fn` on a database of its own, for the failures mid-COPY: on PGlite they leave data behind (below). */
    async function onOwnDb(fn: (db: TestDb['db']) => Promise<void>): Promise<void> {
      const own = await createTestDb();
      try {
        await fn(own.db);
      } finally {
        await own.close();
      }
    }

    const MID_COPY_FAILURE = "select i, repeat('x', 300) as s, 1 / (i - 5000) as d from generate_series(1, 10000) i";
    const FIRST_ROW_FAILURE = 'select 1 / (i - 1) from generate_series(1, 3) i';
    const MISSING_COLUMN = 'select no_such_column from generate_series(1, 3) i';
    /** `select 1::int4` in binary COPY: header, one row of one 4-byte field, trailer. */
    const ONE = Buffer.concat([EMPTY_COPY.subarray(0, 19), Buffer.from([0, 1, 0, 0, 0, 4, 0, 0, 0, 1, 0xff, 0xff])]);

    /** `db` (the handle or one pinned connection) answers ordinary queries and copyBinaryOut correctly. */
    async function expectWorks(db: Kysely<any>): Promise<void> {
      const { rows } = await sql<{ n: number }>`select ${41}::int4 + 1 as n`.execute(db);
      expect(rows).toEqual([{ n: 42 }]);
      const one = await copy(db, 'select 1::int4');
      expect(one.equals(ONE)).toBe(true);
      expectBigRows(await copy(db, bigQuery(300)), 300);
      expect((await copy(db, 'select 1 where false')).equals(EMPTY_COPY)).toBe(true);
    }

    /** The handle works sequentially (pg's pool hands out the last released connection first: the one that
     * failed) and then in a burst wider than the pool, so every pooled connection is used. */
    async function expectHealthy(db: TestDb['db'] = t.db): Promise<void> {
      for (let k = 0; k < 3; k++) await expectWorks(db);
      const burst = DIALECT === 'postgres' ? 30 : 4;
      await Promise.all(
        Array.from({ length: burst }, async (_, k) => {
          expectBigRows(await copy(db, bigQuery(50 + k)), 50 + k);
          const { rows } = await sql<{ n: number }>`select ${k}::int4 as n`.execute(db);
          expect(rows).toEqual([{ n: k }]);
        }),
      );
    }

    it('rejects a missing column with the database error, and the handle keeps working', async () => {
      await expect(copy(t.db, MISSING_COLUMN)).rejects.toMatchObject({
        code: '42703',
        message: expect.stringMatching(/column "no_such_column" does not exist/),
      });
      await expectHealthy();
    });

    it('rejects an error on the first row with the database error, and the handle keeps working', async () => {
      await expect(copy(t.db, FIRST_ROW_FAILURE)).rejects.toMatchObject({ code: '22012', message: 'division by zero' });
      await expectHealthy();
    });

    it('leaves the very connection that failed usable (missing column, error on the first row)', async () => {
      await t.db.connection().execute(async (conn) => {
        for (const failing of [MISSING_COLUMN, FIRST_ROW_FAILURE, MISSING_COLUMN]) {
          await expect(copy(conn, failing)).rejects.toMatchObject({ code: expect.stringMatching(/^(42703|22012)$/) });
          await expectWorks(conn);
        }
      });
    });

    it('rejects an error raised mid-COPY (after megabytes of rows) with the database error', () =>
      onOwnDb(async (db) => {
        await expect(copy(db, MID_COPY_FAILURE)).rejects.toMatchObject({ code: '22012', message: 'division by zero' });
        // Ordinary queries still work.
        const { rows } = await sql<{ n: number }>`select 2 + 2 as n`.execute(db);
        expect(rows).toEqual([{ n: 4 }]);
      }));

    // PGlite keeps the partial output of a COPY that failed midway in its /dev/blob, in front of the next COPY's own
    // output, unless copyingPglite takes it away.
    it('after an error raised mid-COPY, the next results are exact, on that connection and the pool', () =>
      onOwnDb(async (db) => {
        await db.connection().execute(async (conn) => {
          await expect(copy(conn, MID_COPY_FAILURE)).rejects.toMatchObject({ code: '22012' });
          const next = await copy(conn, 'select 1::int4');
          expect(next.length).toBe(ONE.length);
          expect(next.equals(ONE)).toBe(true);
          await expectWorks(conn);
        });
        await expectHealthy(db);
        // Several failures in a row, with copies in between.
        for (let k = 0; k < 3; k++) {
          await expect(copy(db, MID_COPY_FAILURE)).rejects.toMatchObject({ code: '22012' });
          expectBigRows(await copy(db, bigQuery(1000)), 1000);
        }
      }));

    it('rejects inside a transaction, and the handle keeps working', async () => {
      const failure = await t.db
        .transaction()
        .execute(async (trx) => {
          await copy(trx, 'select 1 / (i - 3) from generate_series(1, 5) i');
        })
        .catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: '22012', message: 'division by zero' });
      await expectHealthy();
    });
  });

  it('runs 8 calls in parallel, each getting its own result', async () => {
    const queries = Array.from(
      { length: 8 },
      (_, k) =>
        `select ${k}::int4 as k, g::int4 as g, repeat(chr(${65 + k}), 100 + g % 300) as s ` +
        `from generate_series(1, ${300 + k * 400}) g order by g`,
    );
    const results = await Promise.all(queries.map((q) => copy(t.db, q)));
    results.forEach((data, k) => {
      const rows = parseCopy(data);
      expect(rows.length).toBe(300 + k * 400);
      rows.forEach((row, i) => {
        const g = i + 1;
        const decoded = [int4(row[0]!), int4(row[1]!), text(row[2]!)];
        const want = [k, g, String.fromCharCode(65 + k).repeat(100 + (g % 300))];
        if (decoded[0] !== want[0] || decoded[1] !== want[1] || decoded[2] !== want[2]) expect(decoded).toEqual(want);
      });
    });
    // No two results share memory.
    const buffers = new Set(results.map((r) => r.buffer));
    expect(buffers.size).toBe(results.length);
  });

  describe('reuse', () => {
    it('gives the new result, not the old, when reusing a big enough earlier result', async () => {
      const first = await copy(t.db, bigQuery(2000));
      expectBigRows(first, 2000);
      const query = 'select id, t from raw_bytes_scratch order by id';
      const second = await copy(t.db, query, first);
      const fresh = await copy(t.db, query);
      expect(fresh.buffer === second.buffer).toBe(false);
      expect(second.equals(fresh)).toBe(true);
      expect(parseCopy(second).map((r) => text(r[1]!))).toEqual(
        [...SCRATCH].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1)).map((r) => r.t),
      );
      const third = await copy(t.db, bigQuery(1500), second);
      expectBigRows(third, 1500);
    });

    it('puts the new result in the memory of a big enough earlier result', async () => {
      const first = await copy(t.db, bigQuery(2000));
      const firstBuffer = first.buffer;
      const query = 'select id, t from raw_bytes_scratch order by id';
      const second = await copy(t.db, query, first);
      // (=== rather than toBe: a failing toBe would diff two multi-megabyte ArrayBuffers.)
      expect(second.buffer === firstBuffer).toBe(true);
      expect(second.equals(await copy(t.db, query))).toBe(true);
      // And again, bigger than the last one but within the memory.
      const third = await copy(t.db, bigQuery(1500), second);
      expect(third.buffer === firstBuffer).toBe(true);
      expectBigRows(third, 1500);
    });

    it('gives a correct result when the earlier result is too small', async () => {
      const small = await copy(t.db, 'select 1::int4 as one');
      expect(parseCopy(small)).toEqual([[Buffer.from([0, 0, 0, 1])]]);
      const rows = 20_000;
      const big = await copy(t.db, bigQuery(rows), small);
      expect(big.length).toBeGreaterThan(small.buffer.byteLength);
      expectBigRows(big, rows);
      expect(big.equals(await copy(t.db, bigQuery(rows)))).toBe(true);
      // A 16-byte reuse buffer (Buffer.alloc: memory of its own, not a slice of Node's shared pool).
      const again = await copy(t.db, SCRATCH_SELECT, Buffer.alloc(16));
      expect(again.equals(await copy(t.db, SCRATCH_SELECT))).toBe(true);
      // A slice of Node's shared pool for small Buffers is never written over: other Buffers live in that memory.
      const pooled = Buffer.from('hello');
      const neighbour = Buffer.from('world');
      const fromPooled = await copy(t.db, SCRATCH_SELECT, pooled);
      expect(fromPooled.equals(await copy(t.db, SCRATCH_SELECT))).toBe(true);
      expect(fromPooled.buffer === pooled.buffer).toBe(false);
      expect([pooled.toString(), neighbour.toString()]).toEqual(['hello', 'world']);
    });
  });

  it('returns null for a Kysely instance createDb did not make', async () => {
    let other: Kysely<unknown>;
    if (DIALECT === 'postgres') {
      expect(t.url).toBeTruthy();
      other = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: t.url, max: 2 }) }) });
    } else {
      other = new Kysely({ dialect: new PGliteDialect({ pglite: new PGlite() }) });
    }
    try {
      expect(await copyBinaryOut(other, SCRATCH_SELECT)).toBeNull();
      expect(await other.transaction().execute((trx) => copyBinaryOut(trx, 'select 1'))).toBeNull();
      // The instance still works as usual afterwards.
      const { rows } = await sql<{ n: number }>`select 41 + 1 as n`.execute(other);
      expect(rows).toEqual([{ n: 42 }]);
    } finally {
      await other.destroy();
    }
  });

  it('gives just header and trailer for an empty result', async () => {
    const data = await copy(t.db, 'select id, t, b from raw_bytes_scratch where false');
    expect(data).toEqual(EMPTY_COPY);
    expect(data.length).toBe(21);
    expect(parseCopy(data)).toEqual([]);
    // In a transaction too.
    expect(await t.db.transaction().execute((trx) => copy(trx, 'select 1 where false'))).toEqual(EMPTY_COPY);
  });
});
