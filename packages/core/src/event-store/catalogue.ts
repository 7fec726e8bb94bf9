import { z } from 'zod';

/** One event type: its name, the version of its data schema, and the schema (strict: unknown fields refused). */
export interface EventDefinition<TType extends string = string, TData extends z.ZodType = z.ZodType> {
  readonly type: TType;
  readonly schemaVersion: number;
  readonly data: TData;
}

export function defineEvent<const TType extends string, const TShape extends z.ZodRawShape>(
  type: TType,
  schemaVersion: number,
  shape: TShape,
): EventDefinition<TType, z.ZodObject<TShape, z.core.$strict>> {
  return { type, schemaVersion, data: z.strictObject(shape) };
}

export type EventOf<D> = D extends EventDefinition<infer T, infer S> ? { type: T; data: z.output<S> } : never;

export type Catalogue = ReadonlyMap<string, EventDefinition>;

export function createCatalogue(definitions: readonly EventDefinition[]): Catalogue {
  const map = new Map<string, EventDefinition>();
  for (const d of definitions) {
    if (!/^[a-z][a-z_]*(\.[a-z][a-z_]*)+$/.test(d.type)) throw new Error(`event type ${d.type} is not dot.separated`);
    if (map.has(d.type)) throw new Error(`event type ${d.type} is defined twice`);
    map.set(d.type, d);
  }
  return map;
}

/** Who did it, through which surface, from where: travels with every event, never a secret. */
export const eventMetaSchema = z.strictObject({
  actor: z.strictObject({
    type: z.enum(['user', 'api_key', 'env_key', 'system', 'anonymous']),
    id: z.string().min(1).max(128).nullable(),
  }),
  via: z.enum(['web', 'trpc', 'rest', 'cli', 'system']),
  ip: z.string().max(64).nullable(),
  user_agent: z.string().max(512).nullable(),
  request_id: z.string().max(128).nullable(),
});
export type EventMeta = z.output<typeof eventMetaSchema>;

export const SYSTEM_META: EventMeta = {
  actor: { type: 'system', id: null },
  via: 'system',
  ip: null,
  user_agent: null,
  request_id: null,
};
