import { TRPCClientError } from '@trpc/client';

/** Words a person can act on, from a tRPC or fetch error; never a stack. */
export function messageOf(error: unknown): string {
  if (error instanceof TRPCClientError) {
    const status: number | undefined = error.data?.httpStatus;
    if (error.data?.keyledgerCode === 'csrf_rejected') {
      // The page is open at an address other than the server's public URL (e.g. 127.0.0.1 for localhost).
      return 'This page is open at an address Keyledger does not know as its own. Open it at its public URL (KEYLEDGER_PUBLIC_URL) and try again.';
    }
    if (status === 401) return 'Your session has ended. Sign in again.';
    if (status === 429) return 'Too many attempts. Wait a little and try again.';
    if (status === 503 || status === undefined) {
      return error.message && status !== undefined ? error.message : 'The server could not be reached. Try again.';
    }
    return error.message || 'Something went wrong.';
  }
  if (error instanceof Error) return error.message;
  return 'Something went wrong.';
}
