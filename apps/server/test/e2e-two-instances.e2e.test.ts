import { testDatabaseUrl } from '@keyledger/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContractClient, OpenApiContract, type Res, SecretLedger } from './openapi-contract.ts';
import { type Backend, createBackend, randomSecret, type Spawned, spawnServer } from './spawn-server.ts';

/**
 * Two server processes on one Postgres database (DESIGN §4, revocation bound): what is revoked on one is refused
 * by the other within 1 s, and both derive the same successor when one token is refreshed on each at once.
 */

const BOUND_MS = 1000;
const POLL_MS = 20;

/** Polls `call` every 20 ms until it answers 401; the delay is measured from `since`. */
async function msUntil401(call: () => Promise<Res>, since: number): Promise<{ ms: number; status: number }> {
  for (;;) {
    const res = await call();
    const ms = performance.now() - since;
    if (res.status === 401 || ms > 3 * BOUND_MS) return { ms, status: res.status };
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

describe.skipIf(!testDatabaseUrl())('two server processes on one Postgres database', () => {
  const secrets = new SecretLedger();
  const adminKey = `env-admin-${randomSecret(40)}`;
  const user = { email: `two-${randomSecret(8).toLowerCase()}@example.com`, password: randomSecret(24) };
  let backend: Backend;
  let a: Spawned;
  let b: Spawned;
  let onA: ContractClient;
  let onB: ContractClient;
  const delays: Record<string, number> = {};

  const signIn = async () => {
    const res = await onA.call('POST /v1/auth/pw/signin', { body: user });
    expect(res.status).toBe(200);
    return res.body.access_token as string;
  };

  beforeAll(async () => {
    secrets.add(adminKey, user.password);
    backend = await createBackend(testDatabaseUrl());
    const env = { ...backend.env, KEYLEDGER_ADMIN_API_KEY: adminKey };
    // A first, so that it alone migrates the fresh database; then B on the same one.
    a = await spawnServer(env);
    b = await spawnServer(env);
    const contract = await OpenApiContract.load(a.url);
    onA = new ContractClient(a.url, contract, secrets);
    onB = new ContractClient(b.url, contract, secrets);
    const created = await onA.call('POST /v1/users', { apiKey: adminKey, body: { ...user, name: 'Two' } });
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await backend?.close();
    console.log(
      `revocation seen by the second instance after: ${Object.entries(delays)
        .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
        .join(', ')}`,
    );
  });

  it('a key revoked on A is refused by B within 1 s', async () => {
    const token = await signIn();
    const created = await onA.call('POST /v1/api-keys', { token, body: { name: 'two-instances' } });
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    // Both credentials work on B (and B now has them in whatever cache it keeps).
    for (let i = 0; i < 3; i++) {
      expect((await onB.call('GET /v1/users/me', { apiKey: key })).status).toBe(200);
      expect((await onB.call('GET /v1/users/me', { token })).status).toBe(200);
    }
    const revoked = await onA.call('DELETE /v1/api-keys/{id}', { token, params: { id: created.body.id } });
    expect(revoked.status).toBe(204);
    const since = performance.now();
    const seen = await msUntil401(() => onB.call('GET /v1/users/me', { apiKey: key }), since);
    delays['key revoke'] = seen.ms;
    console.log(`key revoked on A: B answered 401 after ${seen.ms.toFixed(1)} ms`);
    expect(seen.status).toBe(401);
    expect(seen.ms).toBeLessThan(BOUND_MS);
    // And it stays refused.
    expect((await onB.call('GET /v1/users/me', { token: key })).status).toBe(401);
  });

  it('a session signed out on A is refused by B within 1 s', async () => {
    const token = await signIn();
    for (let i = 0; i < 3; i++) expect((await onB.call('GET /v1/users/me', { token })).status).toBe(200);
    expect((await onA.call('POST /v1/auth/signout', { token })).status).toBe(204);
    const since = performance.now();
    const seen = await msUntil401(() => onB.call('GET /v1/users/me', { token }), since);
    delays.signout = seen.ms;
    console.log(`session signed out on A: B answered 401 after ${seen.ms.toFixed(1)} ms`);
    expect(seen.status).toBe(401);
    expect(seen.ms).toBeLessThan(BOUND_MS);
    expect((await onA.call('GET /v1/users/me', { token })).status).toBe(401);
  });

  it('refreshing one token on A and on B at once gives both the same successor', async () => {
    for (let round = 0; round < 3; round++) {
      const token = await signIn();
      const [ra, rb] = await Promise.all([
        onA.call('POST /v1/auth/uat', { token }),
        onB.call('POST /v1/auth/uat', { token }),
      ]);
      expect([ra.status, rb.status]).toEqual([200, 200]);
      expect(ra.body.access_token).not.toBe(token);
      expect(rb.body.access_token).toBe(ra.body.access_token);
      const successor: string = ra.body.access_token;
      expect((await onA.call('GET /v1/users/me', { token: successor })).status).toBe(200);
      expect((await onB.call('GET /v1/users/me', { token: successor })).status).toBe(200);
    }
  });

  it('leaves no password, token or key in either log, any error body or the database', async () => {
    expect(await Promise.all([a.stop(), b.stop()])).toEqual([0, 0]);
    const logs = a.output() + b.output();
    expect(logs).toContain('listening on');
    expect(secrets.foundIn(logs)).toEqual([]);
    expect(secrets.foundIn(secrets.errorBodies.join('\n'))).toEqual([]);
    const rows = await backend.dumpRows();
    expect(rows.some((r) => r.table === 'events')).toBe(true);
    expect(rows.flatMap((r) => secrets.foundIn(r.text).map((s) => `${r.table}: ${s}`))).toEqual([]);
  });
});
