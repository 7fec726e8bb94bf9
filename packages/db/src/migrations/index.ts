import type { Migration } from 'kysely/migration';
import * as eventLog from './2026-11-22T0900-event-log.ts';
import * as identity from './2026-11-22T1600-identity.ts';
import * as audit from './2026-11-22T1800-audit.ts';
import * as magicLinks from './2026-11-22T1900-magic-links.ts';
import * as oauth from './2026-11-22T1930-oauth.ts';
import * as oauthLinking from './2026-11-22T2000-oauth-linking.ts';
import * as timeOrder from './2026-11-22T2030-time-order.ts';
import * as retiredSessionTokens from './2026-11-23T0100-retired-session-tokens.ts';

/**
 * Every migration, by its dated name. A static list (not a folder scan) so the set is the same however the
 * code is run or bundled. A landed migration is never edited: add a new dated file instead.
 */
export const migrations: Record<string, Migration> = {
  '2026-11-22T0900-event-log': eventLog,
  '2026-11-22T1600-identity': identity,
  '2026-11-22T1800-audit': audit,
  '2026-11-22T1900-magic-links': magicLinks,
  '2026-11-22T1930-oauth': oauth,
  '2026-11-22T2000-oauth-linking': oauthLinking,
  '2026-11-22T2030-time-order': timeOrder,
  '2026-11-23T0100-retired-session-tokens': retiredSessionTokens,
};
