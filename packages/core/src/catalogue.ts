import { apiKeyEvents } from './api-keys/events.ts';
import { auditEvents } from './audit/events.ts';
import { createCatalogue, type EventOf } from './event-store/catalogue.ts';
import { magicLinkEvents } from './magic-links/events.ts';
import { oauthEvents } from './oauth/events.ts';
import { sessionEvents } from './sessions/events.ts';
import { userEvents } from './users/events.ts';

const definitions = [
  ...userEvents,
  ...sessionEvents,
  ...apiKeyEvents,
  ...magicLinkEvents,
  ...oauthEvents,
  ...auditEvents,
] as const;

/** Every event type Keyledger writes (DESIGN §3). */
export const catalogue = createCatalogue(definitions);

/** The discriminated union of every event's `{type, data}`. */
export type KeyledgerEvent = EventOf<(typeof definitions)[number]>;
export type KeyledgerEventType = KeyledgerEvent['type'];
