import { describe, expect, it } from 'vitest';
import { given } from '../../test/given-when-then.ts';
import { type MagicLinkEvent, magicLinkDecider } from './decider.ts';
import { validateNext } from './next.ts';

const HASH = 'a'.repeat(64);
const issued: MagicLinkEvent = {
  type: 'magic_link.issued',
  data: {
    link_id: 'ml_1',
    email: 'ada@example.com',
    user_id: 'user_1',
    code_hash: HASH,
    expires_at: '2026-11-22T14:15:00.000Z',
    next: '/home',
  },
};
const verify = (over: Partial<{ email: string; codeHash: string; now: Date; superseded: boolean }> = {}) => ({
  type: 'VerifyLink' as const,
  data: {
    email: 'ada@example.com',
    codeHash: HASH,
    now: new Date('2026-11-22T14:05:00.000Z'),
    superseded: false,
    sessionId: 'ses_1',
    ...over,
  },
});
const rejected = (reason: 'used' | 'expired' | 'superseded' | 'unknown', link_id: string | null = 'ml_1') => ({
  type: 'magic_link.rejected' as const,
  data: { link_id, reason },
});

describe('magic-link decider', () => {
  it('issues a link, with only the code hash', () => {
    given(magicLinkDecider)
      .when({
        type: 'IssueLink',
        data: {
          linkId: 'ml_1',
          email: 'ada@example.com',
          userId: 'user_1',
          codeHash: HASH,
          expiresAt: new Date('2026-11-22T14:15:00.000Z'),
          next: '/home',
        },
      })
      .then([issued]);
  });
  it('refuses to issue the same link twice', () => {
    given(magicLinkDecider, [issued])
      .when({
        type: 'IssueLink',
        data: {
          linkId: 'ml_1',
          email: 'x@example.com',
          userId: null,
          codeHash: HASH,
          expiresAt: new Date(),
          next: '/',
        },
      })
      .thenThrows('conflict');
  });
  it('verifies a live link once', () => {
    given(magicLinkDecider, [issued])
      .when(verify())
      .then([{ type: 'magic_link.verified', data: { link_id: 'ml_1', session_id: 'ses_1' } }]);
  });
  it('refuses a used link', () => {
    given(magicLinkDecider, [issued, { type: 'magic_link.verified', data: { link_id: 'ml_1', session_id: 'ses_0' } }])
      .when(verify())
      .then([rejected('used')]);
  });
  it('refuses an expired link (at the expiry instant too)', () => {
    given(magicLinkDecider, [issued])
      .when(verify({ now: new Date('2026-11-22T14:15:00.000Z') }))
      .then([rejected('expired')]);
  });
  it('refuses a superseded link', () => {
    given(magicLinkDecider, [issued])
      .when(verify({ superseded: true }))
      .then([rejected('superseded')]);
  });
  it('refuses an unknown link, a wrong code or another address', () => {
    given(magicLinkDecider)
      .when(verify())
      .then([rejected('unknown', null)]);
    given(magicLinkDecider, [issued])
      .when(verify({ codeHash: 'b'.repeat(64) }))
      .then([rejected('unknown')]);
    given(magicLinkDecider, [issued])
      .when(verify({ email: 'eve@example.com' }))
      .then([rejected('unknown')]);
  });
});

describe('next', () => {
  it('keeps same-site paths and defaults to /', () => {
    expect(validateNext(undefined)).toBe('/');
    expect(validateNext('')).toBe('/');
    expect(validateNext('/settings?tab=keys#x')).toBe('/settings?tab=keys#x');
    expect(validateNext('/docs%2Fkeys')).toBe('/docs%2Fkeys');
  });
  it.each([
    '//evil.example',
    '/\\evil.example',
    'https:evil.example',
    'https://evil.example',
    'javascript:alert(1)',
    '%2F%2Fevil.example',
    '/%2F/evil.example',
    '/%252F/evil.example',
    '/%5Cevil.example',
    '/%09/evil.example',
    '/a%20b',
    '\t/evil.example',
    '/\t/evil.example',
    ' /x',
    'evil.example',
    '/%zz',
  ])('refuses %j', (next) => {
    expect(() => validateNext(next)).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ reason: 'invalid_next' }) }),
    );
  });
  it('refuses arrays and other types', () => {
    for (const next of [['/a'], ['/a', '/b'], 1, {}, true]) expect(() => validateNext(next)).toThrow();
  });
});
