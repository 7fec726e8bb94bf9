import type { AppRouter } from '@keyledger/server';
import { QueryClient } from '@tanstack/react-query';
import { render } from '@testing-library/react';
import { createTRPCClient, TRPCClientError, type TRPCLink } from '@trpc/client';
import { observable } from '@trpc/server/observable';
import type { ReactNode } from 'react';
import { Router } from 'wouter';
import { memoryLocation } from 'wouter/memory-location';
import { Providers } from '../app.tsx';
import type { Me } from '../session.tsx';

export type Handler = (input: any) => unknown;

/** A tRPC error as the server sends it: an HTTP status and the Keyledger code. */
export function trpcError(message: string, httpStatus: number, keyledgerCode: string | null = null) {
  return TRPCClientError.from({ error: { message, code: -32600, data: { httpStatus, keyledgerCode, code: 'X' } } });
}

class Stream {
  constructor(
    readonly items: unknown[],
    readonly open: boolean,
  ) {}
}

/** What a mocked subscription sends, item by item; `open` leaves it running after the last one. */
export const stream = (items: unknown[], options: { open?: boolean } = {}) => new Stream(items, options.open ?? false);

/** Answers each procedure from `handlers` (by path, e.g. "apiKeys.list") and records every call. */
function mockLink(handlers: Record<string, Handler>, calls: { path: string; input: unknown }[]): TRPCLink<AppRouter> {
  return () =>
    ({ op }) =>
      observable((observer) => {
        calls.push({ path: op.path, input: op.input });
        const handler = handlers[op.path];
        if (!handler) {
          observer.error(trpcError(`no handler for ${op.path}`, 500));
          return;
        }
        Promise.resolve()
          .then(() => handler(op.input))
          .then(
            (data) => {
              // A subscription's handler answers `stream([...])`: each item is sent in turn.
              for (const item of data instanceof Stream ? data.items : [data])
                observer.next({ result: { type: 'data', data: item } });
              if (!(data instanceof Stream && data.open)) observer.complete();
            },
            (error: unknown) =>
              observer.error(error instanceof TRPCClientError ? error : trpcError(String(error), 500)),
          );
      });
}

export const MEMBER: Me = {
  id: 'user_member',
  email: 'grace@example.com',
  name: 'Grace',
  role: 'member',
  created_at: '2026-11-01T10:00:00.000Z',
  auth: {
    method: 'session',
    scopes: ['profile:read', 'keys:read', 'keys:write', 'sessions:read', 'sessions:write', 'audit:read'],
  },
};

export const ADMIN: Me = {
  ...MEMBER,
  id: 'user_admin',
  email: 'ada@example.com',
  name: 'Ada',
  role: 'admin',
  auth: { method: 'session', scopes: [...MEMBER.auth.scopes, 'users:read', 'users:write'] },
};

/** Renders UI with a real query client and tRPC client over mocked procedures, at `path`. */
export function renderWithApi(ui: ReactNode, handlers: Record<string, Handler>, path = '/') {
  const calls: { path: string; input: unknown }[] = [];
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const trpcClient = createTRPCClient<AppRouter>({ links: [mockLink(handlers, calls)] });
  const location = memoryLocation({ path, record: true });
  const result = render(
    <Providers queryClient={queryClient} trpcClient={trpcClient}>
      <Router hook={location.hook} searchHook={location.searchHook}>
        {ui}
      </Router>
    </Providers>,
  );
  return { ...result, calls, location, queryClient };
}
