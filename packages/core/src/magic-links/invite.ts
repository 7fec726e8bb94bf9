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
} {
  const code = randomBase62(32);
  const linkId = typeId('ml');
  const expiresAt = new Date(options.now.getTime() + MAGIC_LINK_TTL_MS);
  const events = magicLinkDecider.decide(
    { type: 'IssueLink', data: { linkId, email, userId, codeHash: hashToken(code), expiresAt, next: '/' } },
    null,
  );
  const payload = magicLinkMail({
    to: email,
    link: magicLinkUrl(options.publicUrl, code, email),
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
  };
}
