import { apiKeysProjection } from './api-keys/projection.ts';
import { eventSubjectsProjection } from './audit/subjects.ts';
import type { Projection } from './event-store/types.ts';
import { magicLinksProjection } from './magic-links/projection.ts';
import { oauthAccountsProjection } from './oauth/projection.ts';
import { sessionsProjection } from './sessions/projection.ts';
import { usersProjection } from './users/projection.ts';

/** Every inline projection, applied in the append transaction and rebuilt by `projections rebuild`. */
export const projections: readonly Projection[] = [
  usersProjection,
  sessionsProjection,
  apiKeysProjection,
  magicLinksProjection,
  oauthAccountsProjection,
  eventSubjectsProjection,
];
