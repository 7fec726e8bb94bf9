import type { Database } from '@keyledger/db';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.ts';
import { MAIL_TOPIC, type MailPayload } from '../magic-links/service.ts';

/** Sends one message; throws when the server refuses or cannot be reached. Message-ID is stable per outbox row. */
export interface MailTransport {
  send(message: MailPayload & { from: string }): Promise<void>;
}

export interface MailWorkerOptions {
  readonly from: string;
  readonly batchSize?: number;
  /** Backoff after the n-th failure: base·2^(n-1), at most `maxBackoffMs`. */
  readonly baseBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export const DEFAULT_MAIL_FROM = 'Keyledger <no-reply@localhost>';

const parse = (payload: unknown): MailPayload =>
  (typeof payload === 'string' ? JSON.parse(payload) : payload) as MailPayload;

/**
 * Delivers due mail rows once: each row is claimed with `for update skip locked` (several instances never send the
 * same row at once), sent, and marked delivered in the same transaction; its body (which holds the link) is cleared.
 * A failure counts an attempt, records the error and pushes `available_at` out exponentially. A crash between the
 * send and the commit sends again with the same Message-ID, so the duplicate is recognisable.
 */
export async function deliverDueMail(
  deps: { db: Kysely<Database>; clock: Clock },
  transport: MailTransport,
  options: MailWorkerOptions,
): Promise<{ sent: number; failed: number }> {
  const base = options.baseBackoffMs ?? 1000;
  const max = options.maxBackoffMs ?? 3600_000;
  return deps.db.transaction().execute(async (trx) => {
    const now = deps.clock.now();
    const rows = await trx
      .selectFrom('outbox')
      .select(['id', 'payload', 'attempts'])
      .where('topic', '=', MAIL_TOPIC)
      .where('delivered_at', 'is', null)
      .where('available_at', '<=', now)
      .orderBy('available_at')
      .orderBy('id')
      .limit(options.batchSize ?? 10)
      .forUpdate()
      .skipLocked()
      .execute();
    let sent = 0;
    let failed = 0;
    for (const row of rows) {
      const mail = parse(row.payload);
      try {
        await transport.send({ ...mail, from: options.from });
        const kept = {
          to: mail.to,
          subject: mail.subject,
          message_id: mail.message_id,
          body: 'cleared after delivery',
        };
        await trx
          .updateTable('outbox')
          .set({
            delivered_at: deps.clock.now(),
            attempts: row.attempts + 1,
            last_error: null,
            payload: JSON.stringify(kept),
          })
          .where('id', '=', row.id)
          .execute();
        sent++;
      } catch (error) {
        const attempts = row.attempts + 1;
        const wait = Math.min(max, base * 2 ** (attempts - 1));
        await trx
          .updateTable('outbox')
          .set({
            attempts,
            available_at: new Date(deps.clock.now().getTime() + wait),
            last_error: (error instanceof Error ? error.message : String(error)).slice(0, 1000),
          })
          .where('id', '=', row.id)
          .execute();
        failed++;
      }
    }
    return { sent, failed };
  });
}

/** Runs `deliverDueMail` every `intervalMs` until stopped; `kick()` runs it at once (after a request). */
export class MailWorker {
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> | null = null;
  #stopped = false;

  constructor(
    private readonly deps: { db: Kysely<Database>; clock: Clock },
    private readonly transport: MailTransport,
    private readonly options: MailWorkerOptions & { intervalMs?: number; onError?: (error: unknown) => void },
  ) {}

  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  kick(): Promise<unknown> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= deliverDueMail(this.deps, this.transport, this.options)
      .catch((error: unknown) => this.options.onError?.(error))
      .finally(() => {
        this.#running = null;
      });
    return this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(async () => {
      await this.kick();
      this.#schedule();
    }, this.options.intervalMs ?? 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }
}

/** The embedded default without SMTP: the link is printed to the server log. */
export function logTransport(log: (line: string) => void): MailTransport {
  return {
    async send(message) {
      const link = message.text.match(/https?:\/\/\S+/)?.[0] ?? '(no link)';
      log(`mail to ${message.to} (${message.subject}): ${link}`);
    },
  };
}
