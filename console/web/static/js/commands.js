import { api, el, showError, say, deviceLink, can } from './api.js';

const tbody = document.querySelector('#commands tbody');
const shown = new Map(); // command id -> row
function show(c) {
  const tr = el('tr', { 'data-command': c.id }, el('td', {}, el('code', {}, c.id)), el('td', {}, deviceLink(c.device)), el('td', {}, c.name),
    el('td', { class: 'cmd-status' }, c.status), el('td', {}, c.deliveredBy || ''), el('td', {}, c.result || ''));
  const old = shown.get(c.id);
  if (old) old.replaceWith(tr); else tbody.prepend(tr);
  shown.set(c.id, tr);
}

const send = document.getElementById('send');
if (send && can('device:command')) {
  send.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(send);
    document.getElementById('send-error').textContent = '';
    let params;
    try { params = JSON.parse(f.get('params') || '{}'); } catch (e) { showError('send-error', 'Parameters: ' + e.message); return; }
    const body = { name: f.get('name'), params, ttlSeconds: Number(f.get('ttl')) || 0 };
    if (f.get('device')) body.device = f.get('device');
    if (f.get('group')) body.group = f.get('group');
    try {
      const out = await api('/api/v1/commands', { method: 'POST', body });
      out.commands.forEach(show);
      say(`Sent ${out.commands.length} command(s).`);
    } catch (e) { showError('send-error', e); }
  });
}

const lookup = document.getElementById('lookup');
lookup.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const d = new FormData(lookup).get('device');
  if (!d) return;
  try {
    const p = await api(`/api/v1/devices/${encodeURIComponent(d)}/commands`);
    p.commands.reverse().forEach(show);
  } catch (e) { showError(null, e); }
});

const es = new EventSource('/api/v1/events/stream');
es.addEventListener('command', (ev) => show(JSON.parse(ev.data).command));
