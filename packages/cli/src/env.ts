import { resolve } from 'node:path';
import { z } from 'zod';

/** The CLI's one reading of process.env for offline commands. */
const schema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  DATABASE_MIGRATION_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  KEYLEDGER_DATA_DIR: z.string().min(1).default('./.keyledger'),
  KEYLEDGER_CHECKPOINT_KEY: z.string().optional(),
  KEYLEDGER_CHECKPOINT_DIR: z.string().optional(),
  KEYLEDGER_CHECKPOINT_ORIGIN: z.string().optional(),
  KEYLEDGER_PUBLIC_URL: z.url().optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
});

export interface OfflineEnv {
  readonly databaseUrl: string | undefined;
  readonly migrationUrl: string | undefined;
  readonly dataDir: string;
  readonly checkpointKey: string | undefined;
  readonly checkpointKeyPath: string;
  readonly checkpointDir: string;
  readonly checkpointOrigin: string;
  /** Where the server is reached from outside: the origin of the links the CLI prints. */
  readonly publicUrl: string;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function offlineEnv(source: Record<string, string | undefined> = process.env): OfflineEnv {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    throw new UsageError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
  }
  const env = result.data;
  const dataDir = resolve(env.KEYLEDGER_DATA_DIR);
  const publicUrl = new URL(env.KEYLEDGER_PUBLIC_URL ?? `http://localhost:${env.PORT}`);
  return {
    databaseUrl: env.DATABASE_URL,
    migrationUrl: env.DATABASE_MIGRATION_URL ?? env.DATABASE_URL,
    dataDir,
    checkpointKey: env.KEYLEDGER_CHECKPOINT_KEY,
    checkpointKeyPath: resolve(dataDir, 'checkpoint.key'),
    checkpointDir: resolve(env.KEYLEDGER_CHECKPOINT_DIR ?? resolve(dataDir, 'checkpoints')),
    checkpointOrigin: env.KEYLEDGER_CHECKPOINT_ORIGIN ?? `${publicUrl.host}/keyledger`,
    publicUrl: publicUrl.origin,
  };
}
