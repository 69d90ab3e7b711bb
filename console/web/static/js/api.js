// Small helpers shared by the console's pages: API calls with typed
// errors, permissions, and safe DOM building (text only, never HTML).

export class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function api(path, options = {}) {
  const init = { headers: { Accept: 'application/json' }, ...options };
  if (options.body !== undefined && typeof options.body !== 'string') {
    init.body = JSON.stringify(options.body);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, init);
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch { data = null; } }
  if (!res.ok) {
    throw new APIError(res.status, data?.code ?? 'HTTP_' + res.status, data?.message ?? text);
  }
  return data;
}

export const permissions = new Set((document.body.dataset.permissions || '').split(', ').filter(Boolean));
export const can = (p) => permissions.has(p);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return e;
}

export function rows(tbody, items, cells) {
  tbody.replaceChildren(...items.map((it) => el('tr', {}, ...cells(it).map((c) => el('td', {}, c)))));
}

export function say(message, bad = false) {
  const s = document.getElementById('status');
  s.textContent = message;
  s.classList.toggle('bad', bad);
}

export function showError(target, err) {
  const node = typeof target === 'string' ? document.getElementById(target) : target;
  const text = err instanceof APIError ? `${err.code}: ${err.message}` : String(err);
  if (node) node.textContent = text; else say(text, true);
}

export const time = (t) => (t ? new Date(t).toLocaleString() : '');
export const deviceLink = (id) => el('a', { href: '/devices/' + encodeURIComponent(id) }, id);
