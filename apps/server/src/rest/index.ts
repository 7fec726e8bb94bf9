import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/variables.ts';

/** The REST adapter for third parties at /v1, described at /api/openapi. */
export function mountRest(app: OpenAPIHono<AppEnv>): void {
  void app;
}
