import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LATEST_CHECKPOINT_FILE, makeCheckpoint } from '@keyledger/core';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { createSignedInUser, createTestDeps, type TestDeps } from '../testing.ts';

let deps: TestDeps;
let admin: { token: string; userId: string };
let member: { token: string; userId: string };
beforeEach(async () => {
  deps = await createTestDeps();
  admin = await createSignedInUser(deps, { email: 'root@example.com', role: 'admin' });
  member = await createSignedInUser(deps, { email: 'ada@example.com' });
});
afterEach(async () => {
  await deps.close();
});

const get = (path: string, token: string) =>
  createApp(deps).request(path, { headers: { authorization: `Bearer ${token}` } });

describe('audit over REST', () => {
  it('lists events with filters and keyset cursors; members see only their own', async () => {
    const all = (await (await get('/v1/audit/events?limit=2', admin.token)).json()) as {
      data: { seq: number; hash: string; prev_hash: string }[];
      next_cursor: number;
    };
    expect(all.data.map((e) => e.seq)).toEqual([1, 2]);
    expect(all.next_cursor).toBe(2);
    expect(all.data[1]?.prev_hash).toBe(all.data[0]?.hash);
    expect(all.data[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
    const next = (await (await get('/v1/audit/events?after=2&limit=100', admin.token)).json()) as {
      data: unknown[];
      next_cursor: null;
    };
    expect(next.data).toHaveLength(4);
    expect(next.next_cursor).toBeNull();
    const mine = (await (await get('/v1/audit/events', member.token)).json()) as {
      data: { data: { user_id?: string } }[];
    };
    expect(mine.data.length).toBe(3);
    const typed = (await (await get('/v1/audit/events?type=session.*&order=desc', admin.token)).json()) as {
      data: { type: string; seq: number }[];
    };
    expect(typed.data.map((e) => e.type)).toEqual(['session.created', 'session.created']);
    expect(typed.data[0]!.seq).toBeGreaterThan(typed.data[1]!.seq);
    expect((await get('/v1/audit/events?since=yesterday', admin.token)).status).toBe(400);
    expect((await get('/v1/audit/events?type=DROP%20TABLE', admin.token)).status).toBe(400);
  });

  it('answers one event by id, and 404 for someone else’s', async () => {
    const { rows } = await sql<{
      id: string;
    }>`select id::text as id from events where data->>'user_id' = ${admin.userId} limit 1`.execute(deps.t.db);
    const id = rows[0]!.id;
    expect((await get(`/v1/audit/events/${id}`, admin.token)).status).toBe(200);
    expect((await get(`/v1/audit/events/${id}`, member.token)).status).toBe(404);
  });

  it('exports JSON Lines and CSV with the documented columns', async () => {
    const jsonl = await get('/v1/audit/export?format=jsonl', admin.token);
    expect(jsonl.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await jsonl.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number });
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const csv = await get('/v1/audit/export?format=csv&type=session.created', admin.token);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = (await csv.text()).trim().split('\n');
    expect(rows[0]).toBe('seq,occurred_at,type,stream,actor_type,actor_id,ip,user_agent,request_id,data,hash');
    expect(rows).toHaveLength(3);
    expect(rows[1]).toContain('session.created');
  });

  it('verifies the chain against the latest exported checkpoint, and fails when the log was rewritten', async () => {
    const before = (await (await get('/v1/audit/verify', member.token)).json()) as { ok: boolean; checkpoint: unknown };
    expect(before).toMatchObject({ ok: true, checked: 6, checkpoint: null });
    await makeCheckpoint(deps.t.db, {
      signer: deps.checkpoints.signer,
      origin: deps.checkpoints.signer.name,
      exportDir: deps.checkpoints.exportDir,
      clock: deps.clock,
    });
    expect(await (await get('/v1/audit/verify', admin.token)).json()).toMatchObject({
      ok: true,
      checkpoint: { size: 6, ok: true },
    });
    const note = await (await get('/v1/audit/checkpoints/latest', admin.token)).text();
    expect(note.split('\n').slice(0, 2)).toEqual(['test.keyledger.local/keyledger', '6']);
    expect(await (await get('/v1/audit/checkpoints/public-key', admin.token)).text()).toMatch(
      /^test\.keyledger\.local\/keyledger\+[0-9a-f]{8}\+/,
    );
    // An exported note that does not open with this server's key (forged, or signed by another key).
    const latest = join(deps.checkpoints.exportDir, LATEST_CHECKPOINT_FILE);
    const genuine = await readFile(latest, 'utf8');
    await writeFile(
      latest,
      genuine.replace(/^— (\S+) (\S+)$/m, (_, name: string, sig: string) => `— ${name} A${sig.slice(1)}`),
    );
    expect(await (await get('/v1/audit/verify', admin.token)).json()).toMatchObject({
      ok: false,
      reason: 'checkpoint_invalid',
      checkpoint: { size: 0, ok: false },
    });
    await writeFile(latest, genuine);
    // A superuser edits one event behind the triggers' back.
    await deps.t.db.transaction().execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx);
      await sql`update events set data = jsonb_set(data, '{email}', '"mallory@example.com"') where seq = 2`.execute(
        trx,
      );
    });
    expect(await (await get('/v1/audit/verify', admin.token)).json()).toMatchObject({
      ok: false,
      first_bad_seq: 2,
      reason: 'hash_mismatch',
    });
  });
});
