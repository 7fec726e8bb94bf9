import type { Result, Router } from 'hono/router';
import { TrieRouter } from 'hono/router/trie-router';

const MAX_ENTRIES = 4096;
const MAX_PATH = 256;

/**
 * Hono's TrieRouter with its answers remembered per method and path. The routes are fixed once the app is built, so
 * the same request line always matches the same handlers with the same parameters; matching is most of what Hono
 * spends on a request that goes through several middlewares (`/v1/users/me`: the global ones, the surface pipeline,
 * and two routes), and the trie walks its nodes again every time. Hono's RegExpRouter, which answers static paths
 * from a table, refuses these routes (`/v1/users/me` beside `/v1/users/:id`). The memo is bounded: a path over 256
 * characters is not remembered, and past 4,096 entries it starts again empty, so odd paths cannot grow it.
 * Results are shared between requests, as RegExpRouter's are: Hono reads them and never writes to them.
 */
export class MemoRouter<T> implements Router<T> {
  readonly name = 'MemoRouter';
  readonly #router = new TrieRouter<T>();
  readonly #memo = new Map<string, Result<T>>();

  add(method: string, path: string, handler: T): void {
    this.#memo.clear();
    this.#router.add(method, path, handler);
  }

  match(method: string, path: string): Result<T> {
    if (path.length > MAX_PATH) return this.#router.match(method, path);
    const key = `${method} ${path}`;
    let result = this.#memo.get(key);
    if (result === undefined) {
      result = this.#router.match(method, path);
      if (this.#memo.size >= MAX_ENTRIES) this.#memo.clear();
      this.#memo.set(key, result);
    }
    return result;
  }
}
