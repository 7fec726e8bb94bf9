import { DomainError, verifyMagicLink } from '@keyledger/core';
import type { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { sessionCookieName, sessionCookieOptions } from '../http/cookies.ts';
import { type AppEnv, metaOf } from '../http/variables.ts';
import { escapeHtml, page } from './html.ts';

const refused = (email: string) =>
  page(
    'Sign-in link',
    `<h1>This sign-in link cannot be used</h1>
<p>It was already used, has expired, or a newer link was sent. Ask for a new one.</p>
<p><a href="/login${email ? `?email=${encodeURIComponent(email)}` : ''}">Send me a new link</a></p>`,
  );

/**
 * `GET /auth/magic` only asks to confirm (mail scanners follow links: a GET consumes nothing); the confirm button
 * POSTs the form, Origin-checked, which consumes the link, sets the session cookie and redirects to the stored next.
 */
export function registerMagicLinkPages(app: Hono<AppEnv>): void {
  app.get('/auth/magic', (c) => {
    const code = c.req.query('code') ?? '';
    const email = c.req.query('email') ?? '';
    if (!/^[0-9A-Za-z]{32}$/.test(code) || email.length === 0 || email.length > 320) {
      return c.html(refused(''), 400);
    }
    return c.html(
      page(
        'Sign in',
        `<h1>Sign in as ${escapeHtml(email)}?</h1>
<form method="post" action="/auth/magic">
  <input type="hidden" name="email" value="${escapeHtml(email)}">
  <input type="hidden" name="code" value="${escapeHtml(code)}">
  <button type="submit">Sign in</button>
</form>`,
      ),
    );
  });

  app.post('/auth/magic', async (c) => {
    const deps = c.get('deps');
    if (c.req.header('origin') !== deps.config.publicUrl.origin) {
      return c.html(page('Sign in', '<p>Cross-site request refused.</p>'), 403);
    }
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim();
    if (type !== 'application/x-www-form-urlencoded' && type !== 'multipart/form-data') {
      return c.html(page('Sign in', '<p>Send the form.</p>'), 415);
    }
    const body = await c.req.parseBody();
    const field = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '');
    const email = field('email').slice(0, 320);
    try {
      const s = await verifyMagicLink(deps.core, metaOf(c.var, 'web', c.req.header('user-agent')), {
        email,
        code: field('code'),
        lifetime: 'browser',
      });
      setCookie(c, sessionCookieName(deps.config), s.token, sessionCookieOptions(deps.config, s.expiresAt));
      return c.redirect(s.next, 303);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'unauthorized') return c.html(refused(email), 400);
      throw error;
    }
  });
}
