/** The explorer's filters as they live in the URL (shareable, back-button friendly) and as the API takes them. */

export const RANGES = {
  '1h': { label: 'Last hour', ms: 3600_000 },
  '24h': { label: 'Last 24 hours', ms: 24 * 3600_000 },
  '7d': { label: 'Last 7 days', ms: 7 * 24 * 3600_000 },
  '30d': { label: 'Last 30 days', ms: 30 * 24 * 3600_000 },
  all: { label: 'All time', ms: null },
  custom: { label: 'Custom range', ms: null },
} as const;
export type RangeKey = keyof typeof RANGES;

export interface Filters {
  type: string;
  actor: string;
  user: string;
  range: RangeKey;
  /** datetime-local values (local time), used when range is custom */
  since: string;
  until: string;
}

export const EMPTY_FILTERS: Filters = { type: '', actor: '', user: '', range: 'all', since: '', until: '' };

export const EVENT_TYPES = [
  'user.*',
  'user.registered',
  'user.invited',
  'user.email_verified',
  'user.password_set',
  'user.role_changed',
  'user.disabled',
  'user.enabled',
  'session.*',
  'session.created',
  'session.refreshed',
  'session.extended',
  'session.refresh_rejected',
  'session.revoked',
  'signin.failed',
  'api_key.*',
  'api_key.created',
  'api_key.rotated',
  'api_key.revoked',
  'auth.rejected',
  'magic_link.*',
  'magic_link.issued',
  'magic_link.verified',
  'magic_link.rejected',
  'magic_link.rate_limited',
  'oauth.*',
  'oauth.account_linked',
  'oauth.signin_failed',
  'access.denied',
];

export function filtersFromSearch(search: string): Filters {
  const p = new URLSearchParams(search);
  const range = p.get('range');
  return {
    type: p.get('type') ?? '',
    actor: p.get('actor') ?? '',
    user: p.get('user') ?? '',
    range: range && range in RANGES ? (range as RangeKey) : 'all',
    since: p.get('since') ?? '',
    until: p.get('until') ?? '',
  };
}

/** The URL query for filters (and the selected event), omitting what is empty. */
export function searchFromFilters(f: Filters, event?: string | null): string {
  const p = new URLSearchParams();
  if (f.type) p.set('type', f.type);
  if (f.actor) p.set('actor', f.actor);
  if (f.user) p.set('user', f.user);
  if (f.range !== 'all') p.set('range', f.range);
  if (f.range === 'custom') {
    if (f.since) p.set('since', f.since);
    if (f.until) p.set('until', f.until);
  }
  if (event) p.set('event', event);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export interface ApiFilters {
  type?: string[];
  actor?: string;
  subject?: string;
  since?: string;
  until?: string;
}

const localToIso = (v: string) => {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
};

/** What the API takes. `now` anchors the relative ranges (kept stable so the query key does not move every render). */
export function apiFilters(f: Filters, now: number): ApiFilters {
  const out: ApiFilters = {};
  const types = f.type
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (types.length) out.type = types;
  if (f.actor.trim()) out.actor = f.actor.trim();
  if (f.user.trim()) out.subject = f.user.trim();
  const ms = RANGES[f.range].ms;
  if (ms !== null) out.since = new Date(now - ms).toISOString();
  if (f.range === 'custom') {
    if (f.since) out.since = localToIso(f.since);
    if (f.until) out.until = localToIso(f.until);
  }
  return out;
}

/** The REST export link for the same filters: the browser sends the session cookie with it. */
export function exportHref(f: ApiFilters, format: 'jsonl' | 'csv'): string {
  const p = new URLSearchParams({ format });
  if (f.type) p.set('type', f.type.join(','));
  if (f.actor) p.set('actor', f.actor);
  if (f.subject) p.set('subject', f.subject);
  if (f.since) p.set('since', f.since);
  if (f.until) p.set('until', f.until);
  return `/v1/audit/export?${p.toString()}`;
}

/** The family of an event type ("api_key" of "api_key.created"): what the chart stacks and colours by. */
export const familyOf = (type: string) => type.split('.')[0] ?? type;

export const FAMILY_COLORS: Record<string, string> = {
  user: 'var(--c-user)',
  session: 'var(--c-session)',
  signin: 'var(--c-signin)',
  api_key: 'var(--c-key)',
  auth: 'var(--c-auth)',
  magic_link: 'var(--c-magic)',
  oauth: 'var(--c-oauth)',
  access: 'var(--c-access)',
};

/** Failures and refusals read differently at a glance. */
export const isFailure = (type: string) =>
  /(failed|rejected|denied|rate_limited|refresh_rejected)$/.test(type) || type === 'auth.rejected';
