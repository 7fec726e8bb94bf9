import { z } from '@hono/zod-openapi';
import { SCOPES } from '@keyledger/core';

/** The REST contract's shapes (DESIGN §5). The same schemas validate requests and generate /api/openapi. */
export const Timestamp = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'an ISO 8601 UTC timestamp with milliseconds')
  .openapi({
    example: '2026-11-22T14:00:00.000Z',
    description: 'ISO 8601 UTC with milliseconds',
  });
export const Id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_:.-]+$/);

export const ErrorSchema = z
  .object({
    error: z.string().openapi({ example: 'email: Invalid email address' }),
    code: z.string().openapi({ example: 'invalid_request' }),
    request_id: z.string().openapi({ example: 'req_5X3Yb2J1uQ8kz0Pa' }),
  })
  .openapi('Error');

export const Scope = z.enum(SCOPES).openapi('Scope');
export const Role = z.enum(['admin', 'member']).openapi('Role');

export const TokenResponse = z
  .object({
    access_token: z.string().openapi({ example: 'kl_ses_...' }),
    token_type: z.literal('bearer'),
    expires_at: Timestamp,
  })
  .openapi('TokenResponse');

export const User = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string().nullable(),
    role: Role,
    disabled: z.boolean(),
    email_verified: z.boolean(),
    created_at: Timestamp,
  })
  .openapi('User');

export const Me = z
  .object({
    id: z.string(),
    email: z.string().nullable(),
    name: z.string().nullable(),
    role: Role,
    created_at: Timestamp.nullable(),
    auth: z.object({
      method: z.enum(['session', 'api_key', 'env_key']),
      scopes: z.array(Scope),
      key_id: z.string().optional(),
    }),
  })
  .openapi('Me');

export const ApiKey = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    start: z.string().openapi({ example: 'kl_key_AbCdE' }),
    scopes: z.array(Scope),
    created_at: Timestamp,
    expires_at: Timestamp.nullable(),
    ip_allowlist: z.array(z.string()).nullable(),
    last_used_at: Timestamp.nullable(),
  })
  .openapi('ApiKey');

export const CreatedApiKey = ApiKey.extend({
  key: z
    .string()
    .openapi({ description: 'The key itself. Shown in this response only: store it now.', example: 'kl_key_...' }),
}).openapi('CreatedApiKey');

export const Session = z
  .object({
    id: z.string(),
    current: z.boolean(),
    method: z.string(),
    ip: z.string().nullable(),
    user_agent: z.string().nullable(),
    created_at: Timestamp,
    last_seen_at: Timestamp.nullable(),
    expires_at: Timestamp,
  })
  .openapi('Session');

export const listOf = <T extends z.ZodTypeAny>(item: T, name: string) =>
  z.object({ data: z.array(item), next_cursor: z.string().nullable() }).openapi(name);

export const Limit = z.coerce.number().int().min(1).max(1000).default(50);

const email = z.email({ error: 'Invalid email address' }).max(320);
const password = z.string().min(1).max(1024);

export const SignupBody = z
  .object({ email, password, name: z.string().trim().min(1).max(200).optional() })
  .strict()
  .openapi('SignupRequest');
export const SigninBody = z
  .object({ email: z.string().min(1).max(320), password })
  .strict()
  .openapi('SigninRequest');
export const PasswordBody = z
  .object({ current_password: password.optional(), new_password: password })
  .strict()
  .openapi('PasswordChange');
export const CreateApiKeyBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    scopes: z.array(Scope).max(16).optional(),
    expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
    ip_allowlist: z.array(z.string().max(64)).max(100).optional(),
  })
  .strict()
  .openapi('CreateApiKeyRequest');
export const RotateBody = z
  .object({
    grace_seconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 3600)
      .optional(),
  })
  .strict()
  .openapi('RotateApiKeyRequest');
export const CreateUserBody = z
  .object({
    email,
    name: z.string().trim().min(1).max(200).optional(),
    role: Role.optional(),
    password: password.optional(),
  })
  .strict()
  .openapi('CreateUserRequest');
export const PatchUserBody = z
  .object({
    name: z.string().trim().min(1).max(200).nullable().optional(),
    role: Role.optional(),
    disabled: z.boolean().optional(),
  })
  .strict()
  .openapi('UpdateUserRequest');

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
