import { Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { describe, expect, it } from 'vitest';
import { readCookie } from './cookies.ts';

/** What hono/cookie's getCookie reads from the same header: readCookie must agree with it. */
async function honoReads(header: string | undefined, name: string): Promise<string | undefined> {
  const app = new Hono();
  app.get('/', (c) => c.json({ value: getCookie(c, name) ?? null }));
  const res = await app.request('/', header === undefined ? {} : { headers: { cookie: header } });
  return ((await res.json()) as { value: string | null }).value ?? undefined;
}

describe('readCookie', () => {
  const name = 'keyledger_session';
  const headers = [
    undefined,
    '',
    'keyledger_session=kl_ses_abc',
    'a=1; keyledger_session=kl_ses_abc; b=2',
    'a=1;keyledger_session=kl_ses_abc',
    '  keyledger_session  =  kl_ses_abc  ',
    'keyledger_session="kl_ses_quoted"',
    'keyledger_session=first; keyledger_session=second',
    'keyledger_session=bad,value; keyledger_session=good',
    'keyledger_session=a%20b',
    'keyledger_session=%E0%A4%A',
    'x_keyledger_session=other',
    'keyledger_session_x=other; keyledger_session=mine',
    'keyledger_session',
    'keyledger_session=',
    'other=keyledger_session',
    ';keyledger_session=after-empty-pair',
    'keyledger_session=a=b; c',
    'a=1;; keyledger_session=x;',
    'keyledger_session=x;;',
    'a; keyledger_session=y',
    'a=1; keyledger_session',
  ];
  for (const header of headers) {
    it(`reads ${JSON.stringify(header)} as hono/cookie does`, async () => {
      expect(readCookie(header, name)).toBe(await honoReads(header, name));
    });
  }
});
