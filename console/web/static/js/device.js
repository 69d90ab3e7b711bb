import { api, el, rows, say, showError, time, can } from './api.js';

const root = document.getElementById('device');
const privateNote = document.getElementById('private-note');
const id = root.dataset.device;
const enc = encodeURIComponent(id);

// ---- identity, history, commands
async function loadDevice() {
  try {
    const { device: d, history } = await api(`/api/v1/devices/${enc}`);
    const facts = [['Device', d.id], ['Owner', d.owner], ['Status', d.status], ['Type', d.type], ['Groups', (d.groups || []).join(', ')],
      ['Firmware', d.firmware || ''], ['Key', `${d.keyAlg} v${d.keyVersion} (${d.keyId})`], ['Private values', d.private ? 'yes' : 'no']];
    // The page is served with these terms and a placeholder for each, so
    // filling them in moves nothing below (the actions) under a pointer.
    const identity = document.getElementById('identity');
    identity.replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    identity.removeAttribute('aria-busy');
    rows(document.querySelector('#history tbody'), [...history].reverse(), (h) => [time(h.timestamp), el('code', {}, h.txId),
      h.deleted ? 'deleted' : h.device?.status ?? '', String(h.device?.keyVersion ?? ''), h.device?.keyId ?? '']);
    if (d.private && d.owner !== document.body.dataset.msp) {
      privateNote.replaceChildren(`The values of ${id} are private to ${d.owner}: they never reach this org's peer or index, only their hashes do. `,
        el('a', { href: '/policies?action=telemetry:read&resource=' + enc, id: 'explain-private' }, 'Explain who may read them'));
    }
  } catch (e) { refused(e); }
}

// refused shows a loader's error in the status line. The device's loaders
// run at once and each may be refused; whichever answers last writes the
// line, so each of them offers Explain for a refusal.
let explainLink = null;
function refused(e) {
  showError(null, e);
  if (e.code === 'ACCESS_DENIED' && !explainLink?.isConnected) {
    explainLink = el('a', { href: '/policies?action=device:read&resource=' + enc, id: 'explain-denied' }, 'Explain why');
    document.getElementById('status').append(' ', explainLink);
  }
}

async function loadCommands() {
  try {
    const p = await api(`/api/v1/devices/${enc}/commands`);
    rows(document.querySelector('#commands tbody'), p.commands, (c) => [el('code', {}, c.id), c.name, c.status, time(c.issuedAt), c.result || '']);
  } catch (e) { refused(e); }
}

// ---- chart
const chartBox = document.getElementById('chart');
const summary = document.getElementById('chart-summary');
const range = document.getElementById('range');
let plot = null;
let series = new Map(); // value name -> index in data
let data = [[]];
let live = null;
let lastSeq = null;

function numericValues(r) {
  return (r.values || []).filter((v) => typeof v.v === 'number');
}

function rebuild() {
  const names = [...series.keys()];
  const opts = {
    width: Math.max(280, chartBox.clientWidth), height: 300,
    // One point (or one bucket) has no span of its own: uPlot pads it to
    // years. Show the hour around it instead.
    scales: { x: { time: true, range: (u, min, max) => {
      const xs = data[0];
      const lo = xs.length ? xs[0] : min, hi = xs.length ? xs[xs.length - 1] : max;
      const r = hi - lo < 60 ? [lo - 1800, hi + 1800] : [min, max];
      chartBox.dataset.xSpan = String(r[1] - r[0]);
      return r;
    } } },
    series: [{ label: 'time' }, ...names.map((n, i) => ({ label: n, stroke: ['#0b5cad', '#b3261e', '#1e6b2e', '#8a5a00', '#6b2e8a'][i % 5] }))],
    axes: [{}, {}],
  };
  if (plot) plot.destroy();
  plot = new uPlot(opts, data, chartBox);
}

function add(readings) {
  let grew = false;
  for (const r of readings) {
    for (const v of numericValues(r)) {
      if (!series.has(v.n)) { series.set(v.n, series.size + 1); data.push(new Array(data[0].length).fill(null)); grew = true; }
    }
    data[0].push(r.ts / 1000);
    for (let i = 1; i < data.length; i++) data[i].push(null);
    for (const v of numericValues(r)) data[series.get(v.n)][data[0].length - 1] = v.v;
    lastSeq = r.seq;
  }
  if (grew || !plot) rebuild(); else plot.setData(data);
  summary.textContent = `${data[0].length} readings shown` + (lastSeq !== null ? `, last sequence ${lastSeq}` : '');
  chartBox.dataset.points = String(data[0].length);
}

function rangeQuery() {
  const f = new FormData(range);
  const q = new URLSearchParams({ buckets: String(Math.min(2000, Math.max(100, Math.round(chartBox.clientWidth / 2)))) });
  const iso = (d) => d.toISOString().replace(/\.\d+Z$/, 'Z');
  const last = Number(f.get('last'));
  if (last) {
    const now = new Date();
    q.set('from', iso(new Date(now - last * 1000)));
    q.set('to', iso(now));
  } else {
    if (f.get('from')) q.set('from', iso(new Date(f.get('from'))));
    if (f.get('to')) q.set('to', iso(new Date(f.get('to'))));
  }
  return q;
}

// loadReadings draws the range from the index's summary (the mean of each
// bucket: a day of 100k readings is a few hundred points), then follows new
// readings one by one.
async function loadReadings() {
  if (live) { live.close(); live = null; }
  series = new Map(); data = [[]]; lastSeq = null;
  const started = performance.now();
  try {
    const sum = await api(`/api/v1/devices/${enc}/readings/summary?` + rangeQuery());
    for (const s of sum.series) { series.set(s.name, series.size + 1); data.push([]); }
    data[0] = sum.times.map((t) => t / 1000);
    sum.series.forEach((s, i) => { data[i + 1] = s.mean; });
    rebuild();
    summary.textContent = `${sum.count} readings in ${sum.times.length} buckets of ${Math.round(sum.bucketMillis / 1000)} s` + (sum.truncated ? ' (truncated: narrow the range)' : '');
    chartBox.dataset.points = String(data[0].length);
    chartBox.dataset.readings = String(sum.count);
    chartBox.dataset.renderMs = String(Math.round(performance.now() - started));
    const newest = await api(`/api/v1/devices/${enc}/readings?order=newest&limit=1`);
    if (newest.readings.length) lastSeq = newest.readings[0].seq;
  } catch (e) { refused(e); }
  if (new FormData(range).get('live')) follow();
}

function follow() {
  const q = lastSeq !== null ? '?after=' + lastSeq : '';
  live = new EventSource(`/api/v1/devices/${enc}/readings/stream${q}`);
  live.addEventListener('reading', (ev) => add([JSON.parse(ev.data)]));
  live.addEventListener('error', () => { if (live && live.readyState === EventSource.CLOSED) say('Live readings stopped: reload the page to resume.', true); });
}

range.addEventListener('submit', (ev) => { ev.preventDefault(); loadReadings(); });

// ---- actions (operators only: the page has no buttons otherwise)
const dialog = document.getElementById('confirm');
if (dialog && can('device:manage')) {
  const form = document.getElementById('confirm-form');
  let action = null;
  document.querySelectorAll('[data-action]').forEach((b) => b.addEventListener('click', () => {
    action = b.dataset.action;
    document.getElementById('confirm-text').textContent = `${b.textContent} device ${id}? This is a ledger transaction.`;
    document.getElementById('key-label').hidden = action !== 'rotate-key';
    document.getElementById('reason-label').hidden = action === 'rotate-key';
    document.getElementById('confirm-error').textContent = '';
    form.reset();
    dialog.showModal();
  }));
  form.addEventListener('submit', async (ev) => {
    if (ev.submitter?.value !== 'ok') return;
    ev.preventDefault();
    const f = new FormData(form);
    const body = action === 'rotate-key' ? { publicKey: f.get('publicKey'), confirm: f.get('confirm') } : { reason: f.get('reason'), confirm: f.get('confirm') };
    try {
      await api(`/api/v1/devices/${enc}/${action}`, { method: 'POST', body });
      dialog.close();
      say(`Done: ${action} of ${id} committed.`);
      loadDevice();
    } catch (e) { showError('confirm-error', e); }
  });
}

// ---- live status and command changes of this device
const events = new EventSource(`/api/v1/events/stream?device=${enc}`);
events.addEventListener('status', (ev) => { const s = JSON.parse(ev.data); say(`Status of ${id}: ${s.change.from} → ${s.change.to}`); loadDevice(); });
events.addEventListener('command', () => loadCommands());

loadDevice();
loadCommands();
loadReadings();
