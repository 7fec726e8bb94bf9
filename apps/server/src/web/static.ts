import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { AppEnv } from '../http/variables.ts';

/** Where `pnpm --filter @keyledger/web build` writes the UI. */
export const WEB_DIST = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

/** Paths the API, the server-rendered pages and the health checks own: the UI never answers for them. */
const RESERVED = ['/v1', '/api', '/trpc', '/auth', '/setup', '/healthz', '/readyz'];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page's own policy: scripts and styles only from this origin (Vite emits no inline script), no framing, and
 * forms and fetches only to this origin, so an injected string cannot load or send anything elsewhere.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

interface Asset {
  body: Uint8Array;
  type: string;
  cache: string;
}

const isReserved = (path: string) => RESERVED.some((p) => path === p || path.startsWith(`${p}/`));

/**
 * Reads the built UI once. Only files that exist in the build are ever served, looked up by exact path in this map,
 * so no request path is joined onto the file system (no traversal to worry about).
 */
function loadBuild(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const file = join(d, name);
      if (statSync(file).isDirectory()) walk(file);
      else {
        const path = `/${relative(dir, file).split(sep).join('/')}`;
        assets.set(path, {
          body: readFileSync(file),
          type: TYPES[extname(file)] ?? 'application/octet-stream',
          // File names under /assets carry a content hash: cache them for good. The rest may change per build.
          cache: path.startsWith('/assets/')
            ? 'public, max-age=31536000, immutable'
            : path === '/index.html'
              ? 'no-cache'
              : 'public, max-age=3600',
        });
      }
    }
  };
  walk(dir);
  return assets;
}

const builds = new Map<string, { mtimeMs: number; assets: Map<string, Asset> }>();

/** One read per build (tests create many apps over the same one); a rebuilt index.html is read afresh. */
function cachedBuild(dir: string): Map<string, Asset> | null {
  const indexFile = join(dir, 'index.html');
  if (!existsSync(indexFile)) return null;
  const { mtimeMs } = statSync(indexFile);
  const cached = builds.get(dir);
  if (cached && cached.mtimeMs === mtimeMs) return cached.assets;
  const assets = loadBuild(dir);
  builds.set(dir, { mtimeMs, assets });
  return assets;
}

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Keyledger</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem">
<h1>The web UI is not built</h1>
<p>The API is running. Build the UI with <code>pnpm --filter @keyledger/web build</code> (<code>pnpm start</code> does
this for you) and restart the server.</p></body></html>`;

/**
 * Serves the built web UI on the server's own origin: hashed assets with a long cache, and index.html for the
 * client's routes (any GET for a page that asks for HTML), never for the API, the server-rendered pages or the
 * health checks, which fall through to their own handlers or to the JSON 404.
 */
export function serveWebUi(app: Hono<AppEnv>, options: { dir?: string } = {}): void {
  const dir = options.dir ?? WEB_DIST;
  const assets = cachedBuild(dir);
  const index = assets?.get('/index.html');

  app.use('*', async (c, next) => {
    const method = c.req.method;
    const path = c.req.path;
    if ((method !== 'GET' && method !== 'HEAD') || isReserved(path)) return next();
    const asset = assets?.get(path);
    if (asset && path !== '/index.html') {
      return new Response(method === 'HEAD' ? null : (asset.body as Uint8Array<ArrayBuffer>), {
        headers: { 'Content-Type': asset.type, 'Cache-Control': asset.cache, 'X-Content-Type-Options': 'nosniff' },
      });
    }
    // A client route: a browser navigating asks for HTML. Anything else (a missing asset, curl) stays a 404.
    const wantsHtml = (c.req.header('accept') ?? '').includes('text/html');
    if (!wantsHtml || path.startsWith('/assets/')) return next();
    if (!index) return c.html(NOT_BUILT, 503, { 'Cache-Control': 'no-store' });
    return new Response(method === 'HEAD' ? null : (index.body as Uint8Array<ArrayBuffer>), {
      headers: { 'Content-Type': index.type, 'Cache-Control': index.cache, 'Content-Security-Policy': CSP },
    });
  });
}
