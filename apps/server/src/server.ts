import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import {
  Checkpointer,
  type Clock,
  catalogue,
  createSetupToken,
  EventStore,
  loadOrCreateSignerKey,
  projections,
  systemClock,
  verifierKeyOf,
} from '@keyledger/core';
import { createDb, type DbHandle, grantApplicationRole, migrateToLatest, ownsEventLog, roleOfUrl } from '@keyledger/db';
import { createAnonymousMode } from './anonymous.ts';
import { createApp } from './app.ts';
import { createServerDeps } from './deps.ts';
import type { Config } from './env.ts';
import { describeError, log } from './log.ts';
import { createMailWorker } from './mail.ts';

/** How long requests in flight (and open event streams) get to finish when the server stops. */
const SHUTDOWN_GRACE_MS = 2000;

export interface RunningServer {
  readonly url: string;
  readonly handle: DbHandle;
  readonly store: EventStore;
  readonly checkpointer: Checkpointer;
  stop(): Promise<void>;
}

/** Opens the database (migrating it as the owner first), starts the checkpointer and the HTTP listener. */
export async function startServer(config: Config, clock: Clock = systemClock): Promise<RunningServer> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const handle = await openDatabase(config);
  const store = new EventStore({ db: handle.db, catalogue, projections });

  const { signer, created } = await loadOrCreateSignerKey({
    fromEnv: config.checkpoint.key,
    path: config.checkpoint.keyPath,
    name: config.checkpoint.origin,
  });
  if (created) log.info(`generated the checkpoint signing key in ${config.checkpoint.keyPath} (mode 0600)`);
  const checkpointer = new Checkpointer({
    db: handle.db,
    signer,
    origin: config.checkpoint.origin,
    exportDir: config.checkpoint.dir,
    clock,
    every: config.checkpoint.every,
    intervalMs: config.checkpoint.intervalSeconds * 1000,
    onError: (error) => log.error('checkpoint failed', { error: describeError(error) }),
  });
  await checkpointer.start(store);

  const base = await createServerDeps({
    handle,
    store,
    config,
    clock,
    checkpoints: { signer, exportDir: config.checkpoint.dir, checkpointer },
  });
  const { authenticator, rollup, core } = base;
  rollup.start();
  const anonymous = config.anonymous ? await createAnonymousMode(core) : undefined;
  const mail = createMailWorker(base.core, config);
  mail.start();
  if (!config.smtpUrl) log.info('no KEYLEDGER_SMTP_URL: sign-in links are printed to this log instead of mailed');
  const app = createApp({ ...base, anonymous, mail });
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log.info(`Keyledger is listening on ${url}`, {
    database: handle.dialect === 'pglite' ? `embedded (${config.dataDir}/pgdata)` : 'postgres',
    public_url: config.publicUrl.origin,
    checkpoint_key: verifierKeyOf(signer),
  });

  const setupToken = anonymous ? null : await createSetupToken(core);
  if (setupToken) {
    // Printed once: only its hash is stored. It expires in an hour; a restart prints a fresh one.
    log.info(
      `No admin yet. Create the first one within an hour: ${new URL(`/setup?token=${setupToken}`, config.publicUrl).href}`,
    );
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    handle,
    store,
    checkpointer,
    stop() {
      stopping ??= (async () => {
        // Stop accepting, let requests in flight finish, then cut what is still open after a grace period:
        // a live tail (audit.onEvent over SSE) never ends by itself and would hold the shutdown forever.
        const http = server as ServerType & { closeIdleConnections?: () => void; closeAllConnections?: () => void };
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        http.closeIdleConnections?.();
        const cut = setTimeout(() => http.closeAllConnections?.(), SHUTDOWN_GRACE_MS);
        await closed;
        clearTimeout(cut);
        await mail.stop();
        await rollup.stop();
        await authenticator.stop();
        await store.drain();
        await checkpointer.stop();
        await handle.close();
      })();
      return stopping;
    },
  };
}

async function openDatabase(config: Config): Promise<DbHandle> {
  if (!config.databaseUrl) {
    const handle = await createDb({ dataDir: config.dataDir });
    await migrateToLatest(handle.db);
    return handle;
  }
  const ownerUrl = config.migrationUrl ?? config.databaseUrl;
  const appRole = roleOfUrl(config.databaseUrl);
  const sameRole = ownerUrl === config.databaseUrl || appRole === roleOfUrl(ownerUrl);
  const owner = await createDb({ databaseUrl: ownerUrl, poolSize: 1 });
  try {
    await migrateToLatest(owner.db);
    if (!sameRole && appRole) await grantApplicationRole(owner.db, appRole);
  } finally {
    await owner.close();
  }
  const handle = await createDb({ databaseUrl: config.databaseUrl });
  if (await ownsEventLog(handle.db)) {
    log.warn(
      'the server connects as the owner of the events table: append-only rests on triggers alone. ' +
        'Create an application role and set DATABASE_URL to it, DATABASE_MIGRATION_URL to the owner (see README).',
    );
  }
  return handle;
}
