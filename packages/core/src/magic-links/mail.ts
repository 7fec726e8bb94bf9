export const MAIL_TOPIC = 'mail';

export interface MailPayload {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly message_id: string;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

export function magicLinkUrl(publicUrl: string, code: string, email: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/auth/magic?code=${encodeURIComponent(code)}&email=${encodeURIComponent(email)}`;
}

/** The sign-in (or invitation) mail: text and HTML, naming the service, the requesting IP and the expiry. */
export function magicLinkMail(input: {
  to: string;
  link: string;
  ip: string | null;
  expiresAt: Date;
  linkId: string;
  publicUrl: string;
  serviceName: string;
  /** An invitation from an admin (`POST /v1/users` without a password) reads differently. */
  invitedBy?: string | undefined;
}): MailPayload {
  const service = input.serviceName;
  const ip = input.ip ?? 'an unknown address';
  const expires = input.expiresAt.toISOString();
  const host = new URL(input.publicUrl).hostname || 'localhost';
  const invite = input.invitedBy !== undefined;
  const subject = invite ? `You are invited to ${service}` : `Your sign-in link for ${service}`;
  const opening = invite
    ? `${input.invitedBy} invited you to ${service} (from IP ${ip}).`
    : `Someone (hopefully you) asked to sign in to ${service} from IP ${ip}.`;
  const closing = invite
    ? `After that, ask for a new sign-in link at ${input.publicUrl.replace(/\/+$/, '')}/login with this address.`
    : 'If you did not ask for it, ignore this message.';
  const text = [
    opening,
    '',
    `Open this link to sign in: ${input.link}`,
    '',
    `The link works once and expires at ${expires} (15 minutes).`,
    closing,
  ].join('\n');
  const html = `<!doctype html><html><body><p>${escapeHtml(opening)}</p><p><a href="${escapeHtml(
    input.link,
  )}">Sign in to ${escapeHtml(service)}</a></p><p>The link works once and expires at ${escapeHtml(
    expires,
  )} (15 minutes). ${escapeHtml(closing)}</p></body></html>`;
  return { to: input.to, subject, text, html, message_id: `<${input.linkId}@${host}>` };
}
