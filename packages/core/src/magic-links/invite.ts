import { hashToken, randomBase62 } from '../credentials/tokens.ts';
import type { OutboxMessage, StreamAppend } from '../event-store/types.ts';
import { typeId } from '../ids.ts';
import { MAGIC_LINK_TTL_MS, magicLinkDecider, magicLinkStream } from './decider.ts';
import { MAIL_TOPIC, magicLinkMail, magicLinkUrl } from './mail.ts';

export interface InvitationOptions {
  /** The public origin the link points at. */
  readonly publicUrl: string;
  /** Who invites, as the mail names them (the admin's name or email). */
  readonly invitedBy: string;
  readonly ip: string | null;
  readonly now: Date;
  readonly serviceName?: string;
  /** How long the link works: the design's 15 minutes unless given (the CLI prints a 1 h link at bootstrap). */
  readonly ttlMs?: number;
}

/**
 * An invitation is a magic link issued with the registration: `user.invited` on the user's stream, `magic_link.issued`
 * on the link's, and the mail in the outbox, all in one append. It is not counted toward the magic-link limits (an
 * admin inviting a team is not an attack on anyone's inbox), and `next` is `/`.
 */
export function buildInvitation(
  userId: string,
  email: string,
  options: InvitationOptions,
): {
  userEvent: { type: 'user.invited'; data: { user_id: string; link_id: string } };
  link: StreamAppend;
  mail: OutboxMessage;
  /** The link itself, for a caller that hands it over instead of mailing it. */
  url: string;
  expiresAt: Date;
} {
  const code = randomBase62(32);
  const linkId = typeId('ml');
  const expiresAt = new Date(options.now.getTime() + (options.ttlMs ?? MAGIC_LINK_TTL_MS));
  const url = magicLinkUrl(options.publicUrl, code, email);
  const events = magicLinkDecider.decide(
    { type: 'IssueLink', data: { linkId, email, userId, codeHash: hashToken(code), expiresAt, next: '/' } },
    null,
  );
  const payload = magicLinkMail({
    to: email,
    link: url,
    ip: options.ip,
    expiresAt,
    linkId,
    publicUrl: options.publicUrl,
    serviceName: options.serviceName ?? 'Keyledger',
    invitedBy: options.invitedBy,
  });
  return {
    userEvent: { type: 'user.invited', data: { user_id: userId, link_id: linkId } },
    link: { stream: magicLinkStream(linkId), expectedVersion: 0, events },
    mail: { topic: MAIL_TOPIC, payload },
    url,
    expiresAt,
  };
}
