/** A small padded text table for the human output; empty cells show as `-`. */
export function table(headers: readonly string[], rows: readonly (readonly (string | null | undefined)[])[]): string {
  const cells = rows.map((row) => headers.map((_, i) => row[i] ?? '-'));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] as string).length)));
  const line = (row: readonly string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  if (cells.length === 0) return `${line(headers)}\n(none)`;
  return [line(headers), ...cells.map(line)].join('\n');
}
