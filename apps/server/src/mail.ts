import { type Clock, logTransport, type MailTransport, MailWorker } from '@keyledger/core';
import type { Database } from '@keyledger/db';
import type { Kysely } from 'kysely';
import nodemailer from 'nodemailer';
import type { Config } from './env.ts';
import { describeError, log } from './log.ts';

/**
 * SMTP through nodemailer. The outbox row's Message-ID is sent as is, so a message delivered twice (a crash between
 * the send and the commit) is recognisable as the same one. Connection and greeting time out after 10 s so a silent
 * server counts as a failed attempt instead of holding the worker.
 */
export function smtpTransport(url: string): MailTransport {
  const transporter = nodemailer.createTransport(url, {
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    async send(message) {
      await transporter.sendMail({
        from: message.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
        messageId: message.message_id,
      });
    },
  };
}

/** Without `KEYLEDGER_SMTP_URL` the link is printed to the server log (the embedded default). */
export function mailTransportFor(config: Pick<Config, 'smtpUrl'>): MailTransport {
  return config.smtpUrl ? smtpTransport(config.smtpUrl) : logTransport((line) => log.info(line));
}

/**
 * The delivery worker: polls the outbox every second (several instances share the rows through `skip locked`) and is
 * kicked after a request that wrote mail, so a link goes out at once. Failures back off from 2 s to 5 min.
 */
export function createMailWorker(deps: { db: Kysely<Database>; clock: Clock }, config: Config): MailWorker {
  return new MailWorker(deps, mailTransportFor(config), {
    from: config.mailFrom,
    intervalMs: 1000,
    baseBackoffMs: 2000,
    maxBackoffMs: 300_000,
    // The SMTP error names the server and the failure, never the message body.
    onError: (error) => log.warn('mail delivery failed', { error: describeError(error) }),
  });
}
