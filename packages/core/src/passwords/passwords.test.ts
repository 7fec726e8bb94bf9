import { describe, expect, it } from 'vitest';
import { burnPasswordCheck, hashPassword, needsRehash, verifyPassword } from './hash.ts';
import { checkPasswordPolicy } from './policy.ts';

describe('password policy (NIST 800-63B)', () => {
  it('counts code points after NFKC: 8 to 256, any characters', () => {
    expect(checkPasswordPolicy('short7!')).toBe('too_short');
    expect(checkPasswordPolicy('😀😀😀😀😀😀😀😀')).toBeNull(); // 8 code points, 16 UTF-16 units
    expect(checkPasswordPolicy('😀😀😀😀😀😀😀')).toBe('too_short');
    expect(checkPasswordPolicy('x'.repeat(256))).toBeNull();
    expect(checkPasswordPolicy('x'.repeat(257))).toBe('too_long');
    expect(checkPasswordPolicy('correct horse battery staple')).toBeNull();
    expect(checkPasswordPolicy('alllowercaseisfine')).toBeNull();
  });
  it('refuses passwords from the common list, whatever their case', () => {
    expect(checkPasswordPolicy('password1')).toBe('common');
    expect(checkPasswordPolicy('PASSWORD1')).toBe('common');
    expect(checkPasswordPolicy('12345678')).toBe('common');
    expect(checkPasswordPolicy('iloveyou')).toBe('common');
  });
});

describe('password hashing', () => {
  it('hashes with argon2id m=19456 t=2 p=1 and verifies, NFKC-normalised', async () => {
    const stored = await hashPassword('ﬁnest pass');
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(stored, 'finest pass')).toBe(true);
    expect(await verifyPassword(stored, 'finest pasS')).toBe(false);
    expect(needsRehash(stored)).toBe(false);
  });
  it('asks for a rehash when the parameters differ', () => {
    expect(needsRehash('$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA')).toBe(true);
    expect(needsRehash('$2b$10$abcdefghijklmnopqrstuv')).toBe(true);
  });
  it('treats a corrupt stored hash as a mismatch, not an error', async () => {
    expect(await verifyPassword('not-a-hash', 'anything')).toBe(false);
  });
  it('burns a real verification for unknown accounts', async () => {
    expect(await burnPasswordCheck('whatever-password')).toBe(false);
  });
});
