import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** bigint columns arrive as strings from `pg` and as numbers from PGlite; callers normalise with Number(). */
type BigIntColumn = ColumnType<string | number, number, number>;
type Timestamp = ColumnType<Date, Date, Date>;

export interface EventsTable {
  seq: BigIntColumn;
  id: string;
  stream: string;
  stream_version: number;
  type: string;
  schema_version: number;
  data: ColumnType<unknown, string, never>;
  meta: ColumnType<unknown, string, never>;
  occurred_at: Timestamp;
  tx_id: ColumnType<string, never, never>;
  prev_hash: Uint8Array;
  hash: Uint8Array;
}

export interface ChainHeadTable {
  id: ColumnType<boolean, boolean, never>;
  seq: BigIntColumn;
  hash: Uint8Array;
  /** The newest occurred_at appended so far (null before the first event). */
  latest_at: Timestamp | null;
  /** The most an event's occurred_at has ever been earlier than one appended before it, in ms. */
  max_lateness_ms: ColumnType<string | number, string | number | undefined, string | number>;
}

export interface CheckpointsTable {
  size: BigIntColumn;
  head_hash: Uint8Array;
  origin: string;
  note: string;
  created_at: Timestamp;
}

export interface OutboxTable {
  id: string;
  topic: string;
  payload: ColumnType<unknown, string, string>;
  event_seq: BigIntColumn | null;
  created_at: Timestamp;
  available_at: Timestamp;
  attempts: Generated<number>;
  delivered_at: Timestamp | null;
  last_error: string | null;
}

type NullableTimestamp = ColumnType<Date | null, Date | null | undefined, Date | null>;

export interface UsersTable {
  id: string;
  email: string;
  name: string | null;
  role: 'admin' | 'member';
  disabled: Generated<boolean>;
  email_verified: Generated<boolean>;
  has_password: Generated<boolean>;
  registration_method: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  method: string;
  kind: 'browser' | 'api';
  token_hash: string;
  prev_token_hash: string | null;
  prev_valid_until: NullableTimestamp;
  created_at: Timestamp;
  expires_at: Timestamp;
  revoked_at: NullableTimestamp;
  revoked_reason: string | null;
  created_ip: string | null;
  created_user_agent: string | null;
}

export interface ApiKeysTable {
  id: string;
  owner_id: string;
  name: string | null;
  scopes: string[];
  start: string;
  token_hash: string;
  created_at: Timestamp;
  expires_at: NullableTimestamp;
  ip_allowlist: string[] | null;
  rotated_from: string | null;
  rotated_to: string | null;
  grace_until: NullableTimestamp;
  revoked_at: NullableTimestamp;
  revoked_reason: string | null;
}

export interface PasswordCredentialsTable {
  user_id: string;
  hash: string;
  updated_at: Timestamp;
}

export interface SessionActivityTable {
  session_id: string;
  last_seen_at: Timestamp;
  ip: string | null;
  user_agent: string | null;
}

export interface ApiKeyUsageTable {
  key_id: string;
  last_used_at: Timestamp;
}

export interface SigninThrottleTable {
  key: string;
  failures: number;
  window_start: Timestamp;
  last_failure_at: Timestamp;
  blocked_until: NullableTimestamp;
}

export interface IdempotencyKeysTable {
  principal: string;
  route: string;
  key: string;
  request_hash: string;
  resource_id: string;
  created_at: Timestamp;
}

export interface SetupTokensTable {
  token_hash: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
}

export interface ServerSecretsTable {
  name: string;
  value: Uint8Array;
  created_at: Timestamp;
}

export interface EventSubjectsTable {
  user_id: string;
  seq: BigIntColumn;
}

export interface OauthAccountsTable {
  issuer: string;
  subject: string;
  user_id: string;
  provider: string;
  email: string | null;
  email_verified: boolean;
  created_at: Timestamp;
}

export interface OauthRequestsTable {
  id_hash: string;
  provider: string;
  state: string;
  code_verifier: string;
  nonce: string;
  next: string;
  /** Set when a signed-in user started the flow to link this identity to their account. */
  link_user_id: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
}

export interface MagicLinksTable {
  id: string;
  email: string;
  user_id: string | null;
  code_hash: string;
  next: string;
  expires_at: Timestamp;
  created_at: Timestamp;
  used_at: NullableTimestamp;
  superseded_at: NullableTimestamp;
}

export interface MagicLinkRequestsTable {
  id: string;
  requester: string;
  email: string;
  created_at: Timestamp;
}

export interface Database {
  events: EventsTable;
  chain_head: ChainHeadTable;
  checkpoints: CheckpointsTable;
  outbox: OutboxTable;
  users: UsersTable;
  sessions: SessionsTable;
  api_keys: ApiKeysTable;
  password_credentials: PasswordCredentialsTable;
  session_activity: SessionActivityTable;
  api_key_usage: ApiKeyUsageTable;
  signin_throttle: SigninThrottleTable;
  idempotency_keys: IdempotencyKeysTable;
  setup_tokens: SetupTokensTable;
  server_secrets: ServerSecretsTable;
  event_subjects: EventSubjectsTable;
  magic_links: MagicLinksTable;
  magic_link_requests: MagicLinkRequestsTable;
  oauth_accounts: OauthAccountsTable;
  oauth_requests: OauthRequestsTable;
}

export type EventRow = Selectable<EventsTable>;
export type NewEventRow = Insertable<EventsTable>;
export type CheckpointRow = Selectable<CheckpointsTable>;
export type OutboxRow = Selectable<OutboxTable>;
export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type OauthAccountRow = Selectable<OauthAccountsTable>;
