/** Exit codes shared by every command. */
export const EXIT = { ok: 0, failed: 1, usage: 2, auth: 3 } as const;

export interface Output {
  readonly json: boolean;
  /** A result: JSON with --json, else the human text. */
  result(value: unknown, human: string): void;
  /**
   * A progress bar on stderr, only when stderr is a terminal and not with --json (piped or redirected: silent).
   * `total` undefined or 0 when it is not known: then the count and the rate alone.
   */
  progress(done: number, total: number | undefined, label: string): void;
  /** Clears the bar, so the result starts on a clean line. */
  endProgress(): void;
  error(message: string): void;
}

/** Redraws at most this often: a bar redrawn per event would cost more than the work on a fast log. */
const REDRAW_MS = 100;
const WIDTH = 30;

const count = (n: number) => n.toLocaleString('en-US');

/** One line of progress: `label [#####-----]  42%  4,200/10,000  1,234/s`. */
export function progressLine(done: number, total: number | undefined, label: string, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? `  ${count(Math.round((done * 1000) / elapsedMs))}/s` : '';
  if (!total) return `${label}  ${count(done)}${rate}`;
  const ratio = Math.min(1, Math.max(0, done / total));
  const filled = Math.round(ratio * WIDTH);
  const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${percent}  ${count(done)}/${count(total)}${rate}`;
}

export function createOutput(json: boolean, stderr: NodeJS.WriteStream = process.stderr): Output {
  const tty = Boolean(stderr.isTTY) && !json;
  let started = 0;
  let drawn = 0;
  let shown = false;
  return {
    json,
    result(value, human) {
      process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`);
    },
    progress(done, total, label) {
      if (!tty) return;
      const now = Date.now();
      if (!started) started = now;
      if (shown && now - drawn < REDRAW_MS && !(total && done >= total)) return;
      drawn = now;
      const line = progressLine(done, total, label, now - started);
      const columns = stderr.columns || 80;
      // \r and erase-line redraw in place; cut to the terminal width so a long line never wraps.
      stderr.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
      shown = true;
    },
    endProgress() {
      if (shown) stderr.write('\r\x1b[2K');
      shown = false;
      started = 0;
    },
    error(message) {
      if (json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
      else process.stderr.write(`error: ${message}\n`);
    },
  };
}
