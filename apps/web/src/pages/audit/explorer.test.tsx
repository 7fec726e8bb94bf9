import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { RequireAuth } from '../../session.tsx';
import { ADMIN, MEMBER, renderWithApi, stream, trpcError } from '../../test/render.tsx';
import type { AuditEvent } from './event-table.tsx';
import { AuditPage } from './explorer.tsx';

function event(seq: number, type = 'session.created'): AuditEvent {
  return {
    seq,
    id: `0193aaaa-0000-7000-8000-${String(seq).padStart(12, '0')}`,
    stream: 'session-ses_1',
    stream_version: 1,
    type,
    schema_version: 1,
    data: { session_id: 'ses_1', email: 'grace@example.com' },
    meta: {
      actor: { type: 'user', id: 'user_member' },
      via: 'trpc',
      ip: '127.0.0.1',
      user_agent: 'test',
      request_id: null,
    },
    occurred_at: new Date(Date.UTC(2026, 10, 22, 14, 0, seq)).toISOString(),
    prev_hash: seq.toString(16).padStart(64, '0'),
    hash: (seq + 1).toString(16).padStart(64, '0'),
  };
}

const explorer = (handlers: Record<string, (input: any) => unknown>, me = ADMIN, path = '/audit') =>
  renderWithApi(
    <RequireAuth>
      <AuditPage />
    </RequireAuth>,
    { 'auth.me': () => me, 'audit.countsByHour': () => [], ...handlers },
    path,
  );

describe('the audit explorer', () => {
  it('shows a loading state while the first page is on its way', async () => {
    explorer({ 'audit.query': () => new Promise(() => {}) });
    expect(await screen.findByText('Loading events…')).toBeTruthy();
  });

  it('shows the error with a way to try again', async () => {
    const user = userEvent.setup();
    let fail = true;
    explorer({
      'audit.query': () => {
        if (fail) throw trpcError('The database is unavailable', 503, 'unavailable');
        return { data: [event(1)], next_cursor: null };
      },
    });
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('The database is unavailable');
    fail = false;
    await user.click(within(alert).getByRole('button', { name: 'Try again' }));
    expect(await screen.findByText('session.created')).toBeTruthy();
  });

  it('says when the log is empty, and when only the filters are', async () => {
    explorer({ 'audit.query': () => ({ data: [], next_cursor: null }) });
    expect(await screen.findByText('No events yet')).toBeTruthy();
  });

  it('says the filters match nothing, and passes them to the API', async () => {
    const { calls } = explorer(
      { 'audit.query': () => ({ data: [], next_cursor: null }) },
      ADMIN,
      '/audit?type=api_key.*&actor=user_x',
    );
    expect(await screen.findByText('No events match these filters')).toBeTruthy();
    expect(calls.find((c) => c.path === 'audit.query')?.input).toMatchObject({
      type: ['api_key.*'],
      actor: 'user_x',
      order: 'desc',
    });
  });

  it('lists events newest first and opens one in the detail panel with its chain position', async () => {
    const user = userEvent.setup();
    explorer({
      'audit.query': (input: { after?: number; order: string }) =>
        input.order === 'asc'
          ? { data: [event(2, 'user.registered')], next_cursor: null }
          : { data: [event(3, 'signin.failed'), event(2, 'user.registered')], next_cursor: null },
      'audit.get': (input: { id: string }) => ({
        ...event(3, 'signin.failed'),
        id: input.id,
        checkpoint: { size: 1000, note: 'note' },
      }),
    });
    const list = await screen.findByRole('list', { name: 'Audit events' });
    const rows = within(list).getAllByRole('button');
    expect(rows.map((r) => r.getAttribute('data-seq'))).toEqual(['3', '2']);
    await user.click(rows[0]!);
    const detail = screen.getByRole('complementary', { name: 'Event 3' });
    expect(within(detail).getByTestId('event-hash').textContent).toBe(event(3).hash);
    expect(within(detail).getByTestId('event-data').textContent).toContain('grace@example.com');
    // The previous event's hash is this one's prev_hash: linked.
    expect(await within(detail).findByText('linked')).toBeTruthy();
    expect(within(detail).getByRole('button', { name: /#2 user.registered/ })).toBeTruthy();
    expect(await within(detail).findByText(/Covered by the signed checkpoint of size 1000/)).toBeTruthy();
  });

  it('loads the next keyset page from the cursor', async () => {
    const query = vi.fn((input: { after?: number; order: string }) =>
      input.after === undefined
        ? { data: [event(5), event(4)], next_cursor: 4 }
        : { data: [event(3)], next_cursor: null },
    );
    explorer({ 'audit.query': query });
    await screen.findByText('The beginning of the log.');
    expect(query.mock.calls.map((c) => c[0].after)).toEqual([undefined, 4]);
    expect(within(screen.getByRole('list', { name: 'Audit events' })).getAllByRole('button')).toHaveLength(3);
  });

  it('offers members no user filter (they see only their own events)', async () => {
    explorer({ 'audit.query': () => ({ data: [event(1)], next_cursor: null }) }, MEMBER);
    await screen.findByText('session.created');
    expect(screen.queryByRole('textbox', { name: 'User' })).toBeNull();
    expect(screen.getByText(/Every event about you/)).toBeTruthy();
  });

  it('reports a broken chain with the first bad seq', async () => {
    const user = userEvent.setup();
    explorer({
      'audit.query': () => ({ data: [event(1)], next_cursor: null }),
      'audit.verifyStream': () =>
        stream([
          { type: 'progress', checked: 20, total: 90 },
          {
            type: 'result',
            result: {
              ok: false,
              checked: 41,
              head: { seq: 90, hash: 'ab'.repeat(32) },
              first_bad_seq: 42,
              reason: 'hash_mismatch',
              checkpoint: null,
            },
          },
        ]),
    });
    await screen.findByText('session.created');
    await user.click(screen.getByRole('button', { name: 'Verify chain' }));
    const result = await screen.findByTestId('verify-result');
    expect(result.textContent).toContain('Chain broken at seq 42');
    expect(within(result).getByRole('button', { name: 'Show event #42' })).toBeTruthy();
  });

  it('shows how far the verification has got while the server walks the chain', async () => {
    const user = userEvent.setup();
    explorer({
      'audit.query': () => ({ data: [event(1)], next_cursor: null }),
      'audit.verifyStream': () => stream([{ type: 'progress', checked: 20_000, total: 90_000 }], { open: true }),
    });
    await screen.findByText('session.created');
    await user.click(screen.getByRole('button', { name: 'Verify chain' }));
    const bar = await screen.findByTestId('verify-progress');
    expect(bar.style.width).toBe('22.2%');
    expect(screen.getByRole('status').textContent).toContain('Recomputed 20,000 of 90,000 hashes');
    expect(screen.getByRole('button', { name: 'Verifying…' })).toBeTruthy();
  });

  it('keeps only the rows in view in the page, however many are loaded', async () => {
    const many = Array.from({ length: 1000 }, (_, i) => event(1000 - i));
    explorer({ 'audit.query': () => ({ data: many, next_cursor: null }) });
    const list = await screen.findByRole('list', { name: 'Audit events' });
    const rendered = within(list).getAllByRole('button').length;
    expect(rendered).toBeGreaterThan(5);
    expect(rendered).toBeLessThan(60);
    expect(screen.getByText('1,000 events')).toBeTruthy();
  });
});
