import { el, say } from './api.js';

const dl = document.getElementById('download');
dl.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData(dl);
  // The API answers with Content-Disposition: attachment.
  window.location.href = `/api/v1/devices/${encodeURIComponent(f.get('device'))}/readings/${encodeURIComponent(f.get('seq'))}/receipt`;
});

const verify = document.getElementById('verify');
verify.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const file = new FormData(verify).get('file');
  const out = document.getElementById('verify-result');
  try {
    const r = JSON.parse(await file.text());
    out.replaceChildren(el('p', {}, 'Not verified: in-browser verification is not built yet. The file holds these top-level fields:'),
      el('pre', {}, Object.keys(r).join('\n')));
  } catch (e) { say('That file is not a JSON receipt: ' + e.message, true); }
});
