import { fileURLToPath } from 'node:url';
import { build } from 'vite';

/** The e2e tests run against the production build, served by the server itself: build it first (about a second). */
export default async function setup(): Promise<void> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  await build({ root, logLevel: 'warn', configFile: `${root}vite.config.ts` });
}
