// Workers: live or dead, what each runs by kind, heartbeat age; read again every 2 seconds.
import { api } from './api.js';
import { clear, fmtAge, fmtTime, h } from './dom.js';

export function mountWorkers(main, ctx) {
  const list = h('div', { id: 'worker-list' });
  main.append(h('div', { class: 'title' }, h('h1', { text: 'Workers' })), list);
  async function load() {
    try {
      const { workers } = await api('/v1/workers');
      ctx.setLive('polling');
      if (!workers.length) {
        clear(list).appendChild(h('p', { class: 'muted', text: 'No worker has registered.' }));
        return;
      }
      clear(list).appendChild(h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['ID', 'Status', 'Host', 'PID', 'Queues', 'Running', 'By kind', 'Heartbeat', 'Started',
          'Version'].map((t) => h('th', { text: t })))),
        h('tbody', {}, workers.map((w) => h('tr', {},
          h('td', { 'data-label': 'ID', text: w.id }),
          h('td', { 'data-label': 'Status' }, h('span', { class: 'badge worker-' + (w.status === 'live' ? 'live' : 'dead'),
            text: w.status })),
          h('td', { 'data-label': 'Host', text: w.host }),
          h('td', { 'data-label': 'PID', text: w.pid }),
          h('td', { 'data-label': 'Queues', text: (w.queues || []).join(', ') }),
          h('td', { 'data-label': 'Running', text: w.running + ' / ' + w.concurrency }),
          h('td', { 'data-label': 'By kind', text: Object.entries(w.running_by_kind || {}).map(([k, n]) => k + ': ' + n).join(', ') || '–' }),
          h('td', { 'data-label': 'Heartbeat', text: fmtAge(w.heartbeat_age_ms) + ' ago' }),
          h('td', { 'data-label': 'Started', text: fmtTime(w.started_at) }),
          h('td', { 'data-label': 'Version', text: w.version })))))));
    } catch (e) {
      if (!ctx.signal.aborted) ctx.showBanner(e.message);
    }
  }
  load();
  const t = setInterval(load, 2000);
  ctx.signal.addEventListener('abort', () => clearInterval(t));
}
