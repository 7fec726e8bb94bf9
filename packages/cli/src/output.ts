/** Exit codes shared by every command. */
export const EXIT = { ok: 0, failed: 1, usage: 2, auth: 3 } as const;

export interface Output {
  readonly json: boolean;
  /** A result: JSON with --json, else the human text. */
  result(value: unknown, human: string): void;
  /** Progress on a terminal only (never in --json or when piped). */
  progress(done: number, total: number, label: string): void;
  endProgress(): void;
  error(message: string): void;
}

export function createOutput(json: boolean): Output {
  const tty = Boolean(process.stderr.isTTY) && !json;
  let shown = false;
  return {
    json,
    result(value, human) {
      process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`);
    },
    progress(done, total, label) {
      if (!tty) return;
      const width = 30;
      const ratio = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(ratio * width);
      process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`);
      shown = true;
    },
    endProgress() {
      if (shown) process.stderr.write('\n');
      shown = false;
    },
    error(message) {
      if (json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
      else process.stderr.write(`error: ${message}\n`);
    },
  };
}
