import { completeSetup, DomainError } from '@keyledger/core';
import type { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { sessionCookieName, sessionCookieOptions } from '../http/cookies.ts';
import { type AppEnv, metaOf } from '../http/variables.ts';
import { escapeHtml, page } from './html.ts';

function form(token: string, message?: string, email = '', name = ''): string {
  return page(
    'Set up Keyledger',
    `<h1>Create the first admin</h1>
<p>This one-time link works for an hour. Choose the email and password you will sign in with.</p>
${message ? `<p class="error" role="alert">${message}</p>` : ''}
<form method="post" action="/setup">
  <input type="hidden" name="token" value="${token}">
  <label>Email <input name="email" type="email" required autocomplete="username" value="${email}"></label>
  <label>Name <input name="name" autocomplete="name" value="${name}"></label>
  <label>Password <input name="password" type="password" required minlength="8" autocomplete="new-password"></label>
  <button type="submit">Create admin</button>
</form>`,
  );
}

/** The first-admin page behind the link the server prints at start when there is no admin. */
export function registerSetupPage(app: Hono<AppEnv>): void {
  app.get('/setup', (c) => {
    const token = c.req.query('token') ?? '';
    if (!/^[0-9A-Za-z]{32}$/.test(token))
      return c.html(
        page('Set up Keyledger', '<p>This setup link is not valid. Restart the server for a new one.</p>'),
        400,
      );
    return c.html(form(token));
  });

  app.post('/setup', async (c) => {
    const deps = c.get('deps');
    // A form post, so the browser sends Origin: refuse anything not from our own page.
    if (c.req.header('origin') !== deps.config.publicUrl.origin) {
      return c.html(page('Set up Keyledger', '<p>Cross-site request refused.</p>'), 403);
    }
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim();
    if (type !== 'application/x-www-form-urlencoded' && type !== 'multipart/form-data') {
      return c.html(page('Set up Keyledger', '<p>Send the form.</p>'), 415);
    }
    const body = await c.req.parseBody();
    const field = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '');
    const token = field('token');
    const email = field('email').slice(0, 320);
    const name = field('name').trim().slice(0, 200);
    if (!/^[^\s@]+@[^\s@]+$/.test(email))
      return c.html(form(escapeHtml(token), 'Enter a valid email address.', escapeHtml(email), escapeHtml(name)), 400);
    try {
      const session = await completeSetup(deps.core, metaOf(c.var, 'web', c.req.header('user-agent')), {
        token,
        email,
        password: field('password'),
        name: name || null,
      });
      setCookie(c, sessionCookieName(deps.config), session.token, sessionCookieOptions(deps.config, session.expiresAt));
      return c.redirect('/', 303);
    } catch (error) {
      if (error instanceof DomainError && error.code !== 'unavailable') {
        const status = error.code === 'invalid_input' ? 400 : error.code === 'unauthorized' ? 401 : 409;
        return c.html(form(escapeHtml(token), escapeHtml(error.message), escapeHtml(email), escapeHtml(name)), status);
      }
      throw error;
    }
  });
}
