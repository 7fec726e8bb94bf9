import { z } from 'zod';

/** Field shapes shared by the event catalogue and the API schemas. */
export const idField = z.string().regex(/^[A-Za-z0-9_:.-]{1,128}$/, 'an id of letters, digits and _:.-');
export const emailField = z.string().min(1).max(320);
export const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256');
export const isoTimestamp = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'an ISO 8601 UTC timestamp with milliseconds');

export const SCOPES = [
  'profile:read',
  'keys:read',
  'keys:write',
  'sessions:read',
  'sessions:write',
  'audit:read',
  'users:read',
  'users:write',
] as const;
export type Scope = (typeof SCOPES)[number];
export const scopeField = z.enum(SCOPES);

export const ROLES = ['admin', 'member'] as const;
export type Role = (typeof ROLES)[number];
export const roleField = z.enum(ROLES);
