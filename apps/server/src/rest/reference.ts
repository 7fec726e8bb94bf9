import { escapeHtml } from '../pages/html.ts';

type Doc = {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
};
type Operation = {
  summary?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
};

function schemaName(schema: unknown): string {
  const ref = (schema as { $ref?: string } | undefined)?.$ref;
  if (ref) return ref.split('/').at(-1) ?? 'object';
  const type = (schema as { type?: string } | undefined)?.type;
  return type ?? 'object';
}

/** A self-contained HTML reference of the OpenAPI document: no script, no CDN, readable offline. */
export function renderReference(doc: Doc): string {
  const ops: string[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = (op.parameters ?? [])
        .map((p) => `<code>${escapeHtml(p.name)}</code> (${escapeHtml(p.in)}${p.required ? ', required' : ''})`)
        .join(', ');
      const body = op.requestBody?.content
        ? Object.entries(op.requestBody.content)
            .map(([type, c]) => `${escapeHtml(type)}: <code>${escapeHtml(schemaName(c.schema))}</code>`)
            .join('; ')
        : '';
      const responses = Object.entries(op.responses ?? {})
        .map(([status, r]) => {
          const schema = r.content ? Object.values(r.content)[0]?.schema : undefined;
          return `<li><b>${escapeHtml(status)}</b> ${escapeHtml(r.description ?? '')}${schema ? ` — <code>${escapeHtml(schemaName(schema))}</code>` : ''}</li>`;
        })
        .join('');
      const auth =
        op.security && op.security.length > 0 ? op.security.map((s) => Object.keys(s).join('+')).join(' or ') : 'none';
      ops.push(`<section id="${escapeHtml(`${method}-${path}`)}">
  <h3><span class="m ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code></h3>
  <p>${escapeHtml(op.summary ?? '')}</p>
  <p class="meta">Auth: ${escapeHtml(auth)}${params ? ` · Parameters: ${params}` : ''}${body ? ` · Body: ${body}` : ''}</p>
  <ul>${responses}</ul>
</section>`);
    }
  }
  const schemas = Object.entries(doc.components?.schemas ?? {})
    .map(
      ([name, s]) =>
        `<details id="schema-${escapeHtml(name)}"><summary><code>${escapeHtml(name)}</code></summary><pre>${escapeHtml(JSON.stringify(s, null, 2))}</pre></details>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.info.title)} API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1b1f24}
section{border-top:1px solid #d8dee4;padding:.5rem 0}h3{margin:.5rem 0;font-size:1rem}
.m{display:inline-block;min-width:4.5em;font-size:.8rem;padding:.1em .4em;border-radius:4px;color:#fff;text-align:center}
.get{background:#0969da}.post{background:#1a7f37}.patch{background:#9a6700}.delete{background:#cf222e}.put{background:#8250df}
.meta{color:#57606a;font-size:.9rem}code{font-family:ui-monospace,monospace}pre{background:#f6f8fa;padding:.75rem;overflow:auto}
</style></head><body>
<h1>${escapeHtml(doc.info.title)} API <small>${escapeHtml(doc.info.version)}</small></h1>
<p>${escapeHtml(doc.info.description ?? '')} The machine-readable document is at <a href="/api/openapi"><code>/api/openapi</code></a> (OpenAPI 3.1).</p>
<p>Errors always look like <code>{"error", "code", "request_id"}</code>.</p>
${ops.join('\n')}
<h2>Schemas</h2>
${schemas}
</body></html>`;
}
