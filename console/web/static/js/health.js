import { api, rows, showError } from './api.js';

try {
  const { network: n } = await api('/api/v1/health');
  document.getElementById('overall').textContent = `${n.healthy ? 'Healthy' : 'Unhealthy'}: channel ${n.channel}, height ${n.height}`;
  rows(document.querySelector('#nodes tbody'), n.nodes || [], (x) => [x.name, x.kind, x.org || '', x.address, x.health + (x.error ? ': ' + x.error : ''),
    String(x.height ?? ''), x.behind ? String(x.behind) : '']);
} catch (e) { showError(null, e); }
