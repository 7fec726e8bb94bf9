import type { Command } from 'commander';
import { UsageError } from '../env.ts';

/** The filter flags `audit tail`, `audit query` and `audit export` share (DESIGN §5). */
export interface AuditFilterFlags {
  type?: string;
  actor?: string;
  subject?: string;
  stream?: string;
  ip?: string;
  outcome?: string;
  since?: string;
  until?: string;
}

export interface AuditFilters {
  type?: string[];
  actor?: string;
  subject?: string;
  stream?: string;
  ip?: string;
  outcome?: 'success' | 'failure';
  since?: string;
  until?: string;
}

export function filterOptions(cmd: Command): Command {
  return cmd
    .option('--type <types>', 'comma-separated event types or prefixes, e.g. api_key.*,session.revoked')
    .option('--actor <id>', 'who did it: a user, key or env:… principal id')
    .option('--subject <id>', 'the user the events are about')
    .option('--stream <stream>', 'one stream, e.g. user-user_…')
    .option('--ip <ip>', 'the client IP the events came from')
    .option('--outcome <outcome>', 'success or failure')
    .option('--since <time>', 'from this time on (ISO 8601, or an age such as 15m, 2h, 7d)')
    .option('--until <time>', 'before this time (ISO 8601, or an age such as 1h)');
}

const TYPE_PATTERN = /^[a-z_]+(\.[a-z_]+)*(\.\*)?$/;
const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** An ISO 8601 time, or an age (`90s`, `15m`, `2h`, `7d`, `1w`) before `now`, as an ISO string. */
export function parseTime(value: string, flag: string, now: Date = new Date()): string {
  const age = /^(\d{1,9})([smhdw])$/.exec(value.trim());
  if (age) return new Date(now.getTime() - Number(age[1]) * (UNITS[age[2] as string] as number)).toISOString();
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new UsageError(`${flag}: not a time: ${value} (give ISO 8601, e.g. 2026-01-31T12:00:00Z, or an age like 2h)`);
  }
  return new Date(value).toISOString();
}

/** Checks the flags here, so a mistake is a usage error (exit 2) naming the flag, before anything is sent. */
export function auditFilters(flags: AuditFilterFlags, now: Date = new Date()): AuditFilters {
  const out: AuditFilters = {};
  if (flags.type !== undefined) {
    const types = flags.type
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    const bad = types.find((t) => !TYPE_PATTERN.test(t));
    if (bad !== undefined || types.length === 0) {
      throw new UsageError(`--type: "${bad ?? flags.type}" is not an event type or a prefix like api_key.*`);
    }
    out.type = types;
  }
  for (const key of ['actor', 'subject', 'stream', 'ip'] as const) {
    const v = flags[key];
    if (v === undefined) continue;
    if (v.trim() === '') throw new UsageError(`--${key}: empty`);
    out[key] = v.trim();
  }
  if (flags.outcome !== undefined) {
    if (flags.outcome !== 'success' && flags.outcome !== 'failure') {
      throw new UsageError(`--outcome: must be success or failure, not ${flags.outcome}`);
    }
    out.outcome = flags.outcome;
  }
  if (flags.since !== undefined) out.since = parseTime(flags.since, '--since', now);
  if (flags.until !== undefined) out.until = parseTime(flags.until, '--until', now);
  if (out.since && out.until && out.since >= out.until) throw new UsageError('--since must be before --until');
  return out;
}

/** The same filters as REST query parameters (`type` comma-separated). */
export function filterParams(filters: AuditFilters): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    if (value === undefined) continue;
    params.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  return params;
}
