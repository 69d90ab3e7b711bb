import { api, el, rows, showError, time } from './api.js';

const form = document.getElementById('audit-form');
async function load() {
  const d = new FormData(form).get('device');
  if (!d) return;
  history.replaceState(null, '', '/audit?device=' + encodeURIComponent(d));
  try {
    const a = await api(`/api/v1/devices/${encodeURIComponent(d)}/audit`);
    rows(document.querySelector('#audit tbody'), a.transactions, (t) => [String(t.block), time(t.time), `${t.creator} (${t.creatorMsp})`,
      t.function + (t.eventType ? ' → ' + t.eventType : ''), (t.endorsers || []).join(', '), t.validationCode, el('code', {}, t.txId)]);
  } catch (e) { showError(null, e); }
}
form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
load();
