import { api, el, showError, say, can } from './api.js';

const explainForm = document.getElementById('explain');
explainForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(explainForm);
  document.getElementById('explain-error').textContent = '';
  const body = { action: f.get('action'), resource: f.get('resource') };
  if (f.get('device')) body.device = f.get('device');
  try {
    const x = await api('/api/v1/explain', { method: 'POST', body });
    const d = x.decision;
    document.getElementById('explanation').replaceChildren(
      el('p', {}, el('span', { class: d.allowed ? 'allowed' : 'denied' }, d.allowed ? 'Allowed' : 'Denied'), ': ', d.reason),
      el('p', { class: 'note' }, `Owner of the resource: ${x.owner}` + (x.default ? `; default: ${x.default}` : '')),
      el('ul', {}, ...(x.statements || []).map((s) => el('li', {}, `${s.policyId}${s.sid ? '/' + s.sid : ''} #${s.index} ${s.effect}: ${s.matched ? 'matched' : 'no match'} — ${s.why}`))));
  } catch (e) { showError('explain-error', e); }
});

function list(target, items, label) {
  const box = document.getElementById(target);
  if (!items.length) { box.replaceChildren(el('p', {}, `No ${label}.`)); return; }
  box.replaceChildren(...items.map((it) => el('details', {}, el('summary', {}, `${it.id} (${it.owner}, version ${it.version})`), el('pre', {}, JSON.stringify(it, null, 2)))));
}

async function load() {
  try { list('policies', (await api('/api/v1/policies')).policies, 'policies'); } catch (e) { showError(null, e); }
  try { list('rules', (await api('/api/v1/rules')).rules, 'rules'); } catch (e) { showError(null, e); }
}

function putForm(formId, errId, kind, perm) {
  const form = document.getElementById(formId);
  if (!form || !can(perm)) return;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = document.getElementById(errId);
    err.textContent = '';
    let body;
    try { body = JSON.parse(new FormData(form).get('body')); } catch (e) { err.textContent = 'Not JSON: ' + e.message; return; }
    if (!body || !body.id) { err.textContent = 'The JSON needs an "id".'; return; }
    try {
      await api(`/api/v1/${kind}/${encodeURIComponent(body.id)}`, { method: 'PUT', body });
      say(`Put ${kind.slice(0, -1)} ${body.id}.`);
      load();
    } catch (e) { showError(err, e); }
  });
}

// Links from other pages ask a question: /policies?action=telemetry:read&resource=sensor-1
const asked = new URLSearchParams(location.search);
if (asked.get('action') && asked.get('resource')) {
  for (const k of ['action', 'resource', 'device']) if (asked.get(k)) explainForm.elements[k].value = asked.get(k);
  explainForm.requestSubmit();
}

putForm('put-policy', 'policy-error', 'policies', 'policy:manage');
putForm('put-rule', 'rule-error', 'rules', 'rule:manage');
load();
