/** One line per entry on stderr, JSON when not on a terminal. Callers pass no secrets; nothing here can tell. */
type Level = 'info' | 'warn' | 'error';

const json = !process.stderr.isTTY;

function write(level: Level, message: string, fields?: Record<string, unknown>): void {
  if (json) {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
  } else {
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    process.stderr.write(`${level === 'info' ? '' : `${level.toUpperCase()}: `}${message}${extra}\n`);
  }
}

export const log = {
  info: (message: string, fields?: Record<string, unknown>) => write('info', message, fields),
  warn: (message: string, fields?: Record<string, unknown>) => write('warn', message, fields),
  error: (message: string, fields?: Record<string, unknown>) => write('error', message, fields),
};

/** An error's class and message, without its stack or its cause's payload. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
