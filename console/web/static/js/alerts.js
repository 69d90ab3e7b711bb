import { api, el, showError, time, deviceLink } from './api.js';

const tbody = document.querySelector('#alerts tbody');
const row = (when, a) => el('tr', {}, el('td', {}, when), el('td', {}, deviceLink(a.device)),
  el('td', { class: 'sev-' + a.severity }, a.severity), el('td', {}, a.rule), el('td', {}, a.message));

try {
  const p = await api('/api/v1/alerts?limit=200');
  tbody.replaceChildren(...p.alerts.map((a) => row('', a)));
} catch (e) { showError(null, e); }

const es = new EventSource('/api/v1/events/stream');
es.addEventListener('alert', (ev) => { const l = JSON.parse(ev.data); tbody.prepend(row(time(l.timestamp), l.alert)); });
