import { api, el, rows, showError, deviceLink, time } from './api.js';

const counts = document.getElementById('counts');
const tbody = document.querySelector('#devices tbody');
const more = document.getElementById('more');
const form = document.getElementById('filter');
let bookmark = '';

function card(title, m) {
  const items = Object.entries(m).sort((a, b) => b[1] - a[1]);
  return el('div', { class: 'card' }, el('h3', {}, title),
    el('ul', {}, ...(items.length ? items.map(([k, v]) => el('li', {}, `${k || '(none)'}: ${v}`)) : [el('li', {}, 'none')])));
}

async function loadCounts() {
  try {
    const f = await api('/api/v1/fleet');
    counts.replaceChildren(
      el('div', { class: 'card' }, el('h3', {}, 'Total'), el('p', { id: 'total' }, String(f.total) + (f.truncated ? '+' : ''))),
      card('Status', f.byStatus), card('Type', f.byType), card('Group', f.byGroup));
  } catch (e) { showError(counts, e); }
}

async function loadDevices(append) {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
  if (append && bookmark) q.set('bookmark', bookmark);
  try {
    const p = await api('/api/v1/devices?' + q);
    const trs = p.devices.map((d) => el('tr', {}, el('td', {}, deviceLink(d.id)), el('td', {}, d.status), el('td', {}, d.type),
      el('td', {}, (d.groups || []).join(', ')), el('td', {}, String(d.keyVersion))));
    if (append) tbody.append(...trs); else tbody.replaceChildren(...trs);
    bookmark = p.bookmark || '';
    more.hidden = !bookmark;
  } catch (e) { showError(null, e); }
}

form.addEventListener('submit', (ev) => { ev.preventDefault(); loadDevices(false); });
more.addEventListener('click', () => loadDevices(true));
async function loadHubs() {
  try {
    const h = await api('/api/v1/hubs');
    document.getElementById('connected').textContent = h.hubs.length
      ? `${h.connectedDevices} devices connected to ${h.hubs.length} hub(s).`
      : 'No hubs configured (start the console with --hub URL for each of the org\'s hubs).';
    rows(document.querySelector('#hubs tbody'), h.hubs, (x) => x.health
      ? [x.health.hub || x.url, x.health.ok ? 'ok' : `failing: broker ${x.health.broker}, ledger ${x.health.ledger}, commit ${x.health.commit}`,
        String(x.health.devices), String(x.health.outboxDepth), time(x.health.lastCommit)]
      : [x.url, 'unreachable: ' + x.error, '', '', '']);
  } catch (e) { showError('connected', e); }
}

const perSecond = (r) => r.readingsPerSecond.toFixed(r.readingsPerSecond < 10 ? 2 : 1);
const privately = (r) => (r.privateBatches ? ` (${r.privateBatches} private, not counted)` : '');

async function loadRate() {
  const total = document.getElementById('rate-total');
  try {
    const t = await api('/api/v1/fleet/throughput?window=60s');
    total.dataset.readings = String(t.readings);
    total.textContent = `${perSecond(t)} readings/s fleet-wide: ${t.readings} readings in ${t.batches} batches${privately(t)} in the last ${t.windowSeconds} s` +
      (t.indexedThrough ? `; indexed through ${time(t.indexedThrough)}.` : '; the index has applied no block yet.');
    rows(document.querySelector('#rate-orgs tbody'), t.byOrg, (o) => [o.mspId, perSecond(o), String(o.readings), String(o.batches) + privately(o)]);
    rows(document.querySelector('#rate-submitters tbody'), t.bySubmitter,
      (o) => [o.submitter || '(unknown)', o.mspId, perSecond(o), String(o.readings), String(o.batches) + privately(o)]);
  } catch (e) { showError(total, e); }
}

loadCounts();
loadHubs();
loadRate();
setInterval(loadRate, 5000);
loadDevices(false);
