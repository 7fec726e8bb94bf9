import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  catalogue,
  EventStore,
  generateSignerKey,
  ManualClock,
  parseSignerKey,
  passwordSignIn,
  projections,
  registerUser,
  SYSTEM_META,
} from '@keyledger/core';
import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { createServerDeps, type ServerDeps } from './deps.ts';
import { loadEnv } from './env.ts';

export interface TestDeps extends ServerDeps {
  readonly t: TestDb;
  readonly clock: ManualClock;
  close(): Promise<void>;
}

/** A fresh database and every server dependency over it, with a movable clock. For REST and tRPC tests. */
export async function createTestDeps(env: Record<string, string> = {}): Promise<TestDeps> {
  const t = await createTestDb();
  const clock = new ManualClock('2026-11-22T14:00:00.000Z');
  const config = loadEnv({ KEYLEDGER_DATA_DIR: '/tmp/keyledger-test-unused', ...env });
  const store = new EventStore({ db: t.db, catalogue, projections });
  const exportDir = await mkdtemp(join(tmpdir(), 'keyledger-checkpoints-'));
  const signer = parseSignerKey(generateSignerKey('test.keyledger.local/keyledger'));
  const deps = await createServerDeps({
    handle: t,
    store,
    config,
    clock,
    checkpoints: { signer, exportDir, checkpointer: null },
  });
  const { authenticator, rollup } = deps;
  return {
    ...deps,
    t,
    clock,
    async close() {
      await authenticator.stop();
      await rollup.stop();
      await store.drain();
      await t.close();
      await rm(exportDir, { recursive: true, force: true });
    },
  };
}

export const TEST_PASSWORD = 'violet-otter-lantern-42';

/** Registers a user with a password and signs them in; returns the API session token (1 h). */
export async function createSignedInUser(
  deps: ServerDeps,
  input: { email: string; role?: 'admin' | 'member'; name?: string },
): Promise<{ userId: string; token: string; sessionId: string }> {
  const user = await registerUser(deps.core, SYSTEM_META, {
    email: input.email,
    name: input.name ?? null,
    role: input.role ?? 'member',
    method: 'admin',
    password: TEST_PASSWORD,
  });
  const session = await passwordSignIn(deps.core, SYSTEM_META, {
    email: input.email,
    password: TEST_PASSWORD,
    ip: '127.0.0.1',
    lifetime: 'api',
  });
  return { userId: user.id, token: session.token, sessionId: session.sessionId };
}
