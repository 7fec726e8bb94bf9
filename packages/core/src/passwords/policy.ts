import { dictionary } from '@zxcvbn-ts/language-common';

/** NIST 800-63B: length only, any characters, no composition rules, and no password from a breach corpus. */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;

// Ranked list of ~49k passwords seen most in breaches, from the maintained zxcvbn-ts common dictionary.
const COMMON = new Set(dictionary['passwords-common'].map((p: string) => p.normalize('NFKC').toLowerCase()));

export type PasswordProblem = 'too_short' | 'too_long' | 'common';

export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Null when acceptable, else why not. Lengths are in Unicode code points after NFKC. */
export function checkPasswordPolicy(password: string): PasswordProblem | null {
  const normalized = normalizePassword(password);
  const length = [...normalized].length;
  if (length < PASSWORD_MIN) return 'too_short';
  if (length > PASSWORD_MAX) return 'too_long';
  if (COMMON.has(normalized.toLowerCase())) return 'common';
  return null;
}

export const PASSWORD_PROBLEM_MESSAGES: Record<PasswordProblem, string> = {
  too_short: `Password must be at least ${PASSWORD_MIN} characters`,
  too_long: `Password must be at most ${PASSWORD_MAX} characters`,
  common: 'This password is too common; choose one that is not on lists of leaked passwords',
};
