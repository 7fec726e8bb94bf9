/** Escapes text for HTML content and attribute values. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/**
 * The frame of the few server-rendered pages (setup, the magic-link confirm page, logout): no script. Their forms
 * POST to this origin, which checks `Origin`; under the server-wide `Referrer-Policy: no-referrer` browsers send
 * `Origin: null` with a form POST, so these pages ask for `same-origin` (nothing leaves for other sites either way).
 */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#1b1f24}
label{display:block;margin:.75rem 0}input{display:block;width:100%;padding:.5rem;font:inherit;box-sizing:border-box;margin-top:.25rem}
button{margin-top:1rem;padding:.6rem 1.2rem;font:inherit;background:#1f6feb;color:#fff;border:0;border-radius:6px;cursor:pointer}
.error{color:#cf222e}
</style></head><body>
${body}
</body></html>`;
}
