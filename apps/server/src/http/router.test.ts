import { Hono } from 'hono';
import { TrieRouter } from 'hono/router/trie-router';
import { describe, expect, it } from 'vitest';
import { MemoRouter } from './router.ts';

const ROUTES: [string, string][] = [
  ['ALL', '*'],
  ['ALL', '/v1/*'],
  ['GET', '/v1/users/me'],
  ['GET', '/v1/users/:id'],
  ['PATCH', '/v1/users/:id'],
  ['DELETE', '/v1/users/:id/sessions'],
  ['GET', '/v1/api-keys/:id'],
  ['POST', '/v1/api-keys/:id/rotate'],
  ['GET', '/healthz'],
];

function both() {
  const memo = new MemoRouter<string>();
  const trie = new TrieRouter<string>();
  for (const [method, path] of ROUTES) {
    memo.add(method, path, `${method} ${path}`);
    trie.add(method, path, `${method} ${path}`);
  }
  return { memo, trie };
}

describe('MemoRouter', () => {
  it('answers exactly as TrieRouter, the first time and every time after, parameters included', () => {
    const { memo, trie } = both();
    const asks: [string, string][] = [
      ['GET', '/v1/users/me'],
      ['GET', '/v1/users/user_a'],
      ['GET', '/v1/users/user_b'],
      ['PATCH', '/v1/users/user_a'],
      ['DELETE', '/v1/users/user_a/sessions'],
      ['POST', '/v1/api-keys/key_1/rotate'],
      ['GET', '/v1/api-keys/key_2'],
      ['GET', '/healthz'],
      ['GET', '/nowhere'],
      ['PUT', '/v1/users/me'],
    ];
    for (let round = 0; round < 3; round++) {
      for (const [method, path] of asks) expect(memo.match(method, path)).toEqual(trie.match(method, path));
    }
    // Remembered answers are per path: one id's parameters never answer for another's.
    const [[, a]] = memo.match('GET', '/v1/api-keys/key_1')[0].filter(([h]) => h === 'GET /v1/api-keys/:id') as [
      [string, Record<string, string>],
    ];
    const [[, b]] = memo.match('GET', '/v1/api-keys/key_2')[0].filter(([h]) => h === 'GET /v1/api-keys/:id') as [
      [string, Record<string, string>],
    ];
    expect([a.id, b.id]).toEqual(['key_1', 'key_2']);
  });

  it('stays right past its bound and for paths too long to remember', () => {
    const { memo, trie } = both();
    for (let i = 0; i < 10_000; i++) {
      const path = `/v1/users/user_${i}`;
      expect(memo.match('GET', path)).toEqual(trie.match('GET', path));
    }
    expect(memo.match('GET', '/v1/users/user_3')).toEqual(trie.match('GET', '/v1/users/user_3'));
    const long = `/v1/users/${'x'.repeat(300)}`;
    expect(memo.match('GET', long)).toEqual(trie.match('GET', long));
  });

  it('forgets what it remembered when a route is added', () => {
    const { memo } = both();
    expect(memo.match('GET', '/v1/late')[0].map(([h]) => h)).toEqual(['ALL *', 'ALL /v1/*']);
    memo.add('GET', '/v1/late', 'GET /v1/late');
    expect(memo.match('GET', '/v1/late')[0].map(([h]) => h)).toEqual(['ALL *', 'ALL /v1/*', 'GET /v1/late']);
  });

  it('routes a Hono app: a parameter reaches its handler, for each of two ids in turn', async () => {
    const app = new Hono({ router: new MemoRouter() });
    app.get('/v1/users/me', (c) => c.text('me'));
    app.get('/v1/users/:id', (c) => c.text(`user ${c.req.param('id')}`));
    for (const id of ['a', 'b', 'a', 'me']) {
      expect(await (await app.request(`/v1/users/${id}`)).text()).toBe(id === 'me' ? 'me' : `user ${id}`);
    }
  });
});
