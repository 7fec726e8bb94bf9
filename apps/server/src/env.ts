import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';

/** `kl_` starts Keyledger's own tokens, which are checked by checksum first: an environment key there would never match. */
const RESERVED_PREFIX = (name: string) =>
  `${name}: a key may not start with kl_ (Keyledger's own keys and sessions do; use another random string)`;

/** The only place the server reads process.env: validated once at start, failing fast with every problem listed. */
export class EnvError extends Error {
  override readonly name = 'EnvError';
}

const ipOrCidr = (entry: string): boolean => {
  const [ip = '', prefix, extra] = entry.split('/');
  const family = isIP(ip);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  const n = Number(prefix);
  return /^\d{1,3}$/.test(prefix) && n <= (family === 4 ? 32 : 128);
};

const list = (raw: string | undefined) =>
  (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const ipList = (name: string, allowStar: boolean) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const entries = list(raw);
      if (allowStar && (entries.length === 0 || entries.includes('*'))) return '*' as const;
      for (const e of entries) {
        if (!ipOrCidr(e))
          ctx.addIssue({ code: 'custom', message: `${name}: "${e}" is not an IP address or CIDR range` });
      }
      return entries;
    });

const oidcProvider = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'id must be lowercase letters, digits, _ or -'),
  name: z.string().min(1).max(100),
  issuer: z.url(),
  client_id: z.string().min(1),
  client_secret: z.string().min(1),
  scopes: z.array(z.string()).optional(),
});

const schema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    DATABASE_MIGRATION_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    KEYLEDGER_DATA_DIR: z.string().min(1).default('./.keyledger'),
    KEYLEDGER_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
    KEYLEDGER_SIGNUP: z.enum(['invite', 'open']).default('invite'),
    KEYLEDGER_SMTP_URL: z.string().optional(),
    KEYLEDGER_MAIL_FROM: z.string().min(3).default('Keyledger <no-reply@localhost>'),
    KEYLEDGER_GOOGLE_CLIENT_ID: z.string().optional(),
    KEYLEDGER_GOOGLE_CLIENT_SECRET: z.string().optional(),
    KEYLEDGER_OIDC_PROVIDERS: z
      .string()
      .optional()
      .transform((raw, ctx) => {
        if (!raw) return [];
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'KEYLEDGER_OIDC_PROVIDERS is not valid JSON' });
          return z.NEVER;
        }
        const result = z.array(oidcProvider).safeParse(parsed);
        if (!result.success) {
          ctx.addIssue({ code: 'custom', message: `KEYLEDGER_OIDC_PROVIDERS: ${result.error.issues[0]?.message}` });
          return z.NEVER;
        }
        return result.data;
      }),
    KEYLEDGER_ADMIN_API_KEY: z
      .string()
      .min(32, 'KEYLEDGER_ADMIN_API_KEY must be at least 32 characters')
      .refine((k) => !k.startsWith('kl_'), RESERVED_PREFIX('KEYLEDGER_ADMIN_API_KEY'))
      .optional(),
    KEYLEDGER_API_KEYS: z
      .string()
      .optional()
      .transform((raw, ctx) => {
        const keys = list(raw);
        if (keys.some((k) => k.length < 32)) {
          ctx.addIssue({ code: 'custom', message: 'every key in KEYLEDGER_API_KEYS must be at least 32 characters' });
        }
        if (keys.some((k) => k.startsWith('kl_'))) {
          ctx.addIssue({ code: 'custom', message: RESERVED_PREFIX('KEYLEDGER_API_KEYS') });
        }
        return keys;
      }),
    KEYLEDGER_ALLOWED_IPS: ipList('KEYLEDGER_ALLOWED_IPS', true),
    KEYLEDGER_TRUSTED_PROXIES: ipList('KEYLEDGER_TRUSTED_PROXIES', false),
    KEYLEDGER_API_RATE_LIMIT: z.coerce.number().int().min(0).default(36000),
    KEYLEDGER_ANONYMOUS: z.enum(['1', '0', '']).optional(),
    KEYLEDGER_CHECKPOINT_KEY: z.string().optional(),
    KEYLEDGER_CHECKPOINT_DIR: z.string().optional(),
    KEYLEDGER_CHECKPOINT_EVERY: z.coerce.number().int().min(1).default(1000),
    KEYLEDGER_CHECKPOINT_INTERVAL: z.coerce.number().min(1).default(60),
    KEYLEDGER_CHECKPOINT_ORIGIN: z
      .string()
      .regex(/^[^\s+]+$/, 'origin must have no spaces or +')
      .optional(),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.KEYLEDGER_GOOGLE_CLIENT_ID) !== Boolean(env.KEYLEDGER_GOOGLE_CLIENT_SECRET)) {
      ctx.addIssue({
        code: 'custom',
        message: 'set both KEYLEDGER_GOOGLE_CLIENT_ID and KEYLEDGER_GOOGLE_CLIENT_SECRET, or neither',
      });
    }
  });

export type OidcProviderConfig = z.output<typeof oidcProvider>;

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  readonly migrationUrl: string | undefined;
  readonly dataDir: string;
  readonly publicUrl: URL;
  readonly signup: 'invite' | 'open';
  readonly smtpUrl: string | undefined;
  readonly mailFrom: string;
  readonly google: { clientId: string; clientSecret: string } | undefined;
  readonly oidcProviders: readonly OidcProviderConfig[];
  readonly adminApiKey: string | undefined;
  readonly apiKeys: readonly string[];
  readonly allowedIps: '*' | readonly string[];
  readonly trustedProxies: readonly string[];
  readonly apiRateLimit: number;
  readonly anonymous: boolean;
  readonly checkpoint: {
    readonly key: string | undefined;
    readonly keyPath: string;
    readonly dir: string;
    readonly every: number;
    readonly intervalSeconds: number;
    readonly origin: string;
  };
}

export function loadEnv(source: Record<string, string | undefined> = process.env): Config {
  // An empty variable means unset, as in most twelve-factor tooling.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`);
    throw new EnvError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const env = result.data;
  const publicUrl = new URL(env.KEYLEDGER_PUBLIC_URL ?? `http://localhost:${env.PORT}`);
  const dataDir = resolve(env.KEYLEDGER_DATA_DIR);
  return {
    port: env.PORT,
    host: env.KEYLEDGER_ANONYMOUS === '1' ? '127.0.0.1' : env.HOST,
    databaseUrl: env.DATABASE_URL,
    migrationUrl: env.DATABASE_MIGRATION_URL ?? env.DATABASE_URL,
    dataDir,
    publicUrl,
    signup: env.KEYLEDGER_SIGNUP,
    smtpUrl: env.KEYLEDGER_SMTP_URL,
    mailFrom: env.KEYLEDGER_MAIL_FROM,
    google:
      env.KEYLEDGER_GOOGLE_CLIENT_ID && env.KEYLEDGER_GOOGLE_CLIENT_SECRET
        ? { clientId: env.KEYLEDGER_GOOGLE_CLIENT_ID, clientSecret: env.KEYLEDGER_GOOGLE_CLIENT_SECRET }
        : undefined,
    oidcProviders: env.KEYLEDGER_OIDC_PROVIDERS,
    adminApiKey: env.KEYLEDGER_ADMIN_API_KEY,
    apiKeys: env.KEYLEDGER_API_KEYS,
    allowedIps: env.KEYLEDGER_ALLOWED_IPS,
    trustedProxies: env.KEYLEDGER_TRUSTED_PROXIES === '*' ? [] : env.KEYLEDGER_TRUSTED_PROXIES,
    apiRateLimit: env.KEYLEDGER_API_RATE_LIMIT,
    anonymous: env.KEYLEDGER_ANONYMOUS === '1',
    checkpoint: {
      key: env.KEYLEDGER_CHECKPOINT_KEY,
      keyPath: resolve(dataDir, 'checkpoint.key'),
      dir: resolve(env.KEYLEDGER_CHECKPOINT_DIR ?? resolve(dataDir, 'checkpoints')),
      every: env.KEYLEDGER_CHECKPOINT_EVERY,
      intervalSeconds: env.KEYLEDGER_CHECKPOINT_INTERVAL,
      origin: env.KEYLEDGER_CHECKPOINT_ORIGIN ?? `${publicUrl.host}/keyledger`,
    },
  };
}
