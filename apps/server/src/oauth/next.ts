/**
 * A `next` target (DESIGN §5): a path that starts with exactly one `/` and, after percent-decoding until it no
 * longer changes, holds no `\`, no control character or whitespace, and does not start with `//`. Empty or absent
 * means `/`. Returns null for anything else (the caller answers 400 `invalid_next`).
 */
export function validateNext(raw: string | undefined): string | null {
  if (raw === undefined || raw === '') return '/';
  if (raw.length > 2048) return null;
  const forms = [raw];
  let current = raw;
  for (let i = 0; i < 8; i++) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(current);
    } catch {
      return null;
    }
    if (decoded === current) break;
    forms.push(decoded);
    current = decoded;
    if (i === 7) return null;
  }
  for (const form of forms) {
    if (!form.startsWith('/') || form.startsWith('//')) return null;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
    if (/[\\\s\u0000-\u001f\u007f-\u009f]/u.test(form)) return null;
  }
  return raw;
}
