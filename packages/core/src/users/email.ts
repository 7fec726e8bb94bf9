/** The one form an address is compared and counted in. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
