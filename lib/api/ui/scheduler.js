// Scheduler: the leader (holder, term, expiry) and the periodic schedules with their next fire;
// pause, resume and trigger one (admin). Read again every 5 seconds.
import { api } from './api.js';
import { clear, fmtTime, h } from './dom.js';

export function mountScheduler(main, ctx) {
  const leader = h('section', { class: 'card', id: 'leader' });
  const list = h('div', { id: 'schedules' });
  main.append(h('div', { class: 'title' }, h('h1', { text: 'Scheduler' })), leader, h('h2', { text: 'Schedules' }), list);

  function button(p, verb, label) {
    const b = h('button', { type: 'button', class: 'small', text: label, 'data-action': verb });
    b.addEventListener('click', async () => {
      if (verb === 'trigger' && !(await ctx.confirm(`Enqueue one job of schedule ${p.name} now?`, 'Trigger'))) return;
      const r = await ctx.act(() => api(`/v1/periodic/${encodeURIComponent(p.name)}/${verb}`, { method: 'POST' }),
        (x) => (verb === 'trigger' ? `Schedule ${p.name}: enqueued job #${x.id}` : `Schedule ${p.name}: ${x.state}`));
      if (r) load();
    });
    return b;
  }

  async function load() {
    try {
      const [lease, { periodic }] = await Promise.all([api('/v1/scheduler'), api('/v1/periodic')]);
      ctx.setLive('polling');
      const facts = [['Leader', lease.holder ?? 'none'], ['Host', lease.host ?? '–'], ['PID', lease.pid ?? '–'],
        ['Term', lease.term ?? '–'], ['Leading', lease.leading ? 'yes' : 'no'], ['Expires', fmtTime(lease.expires_at)],
        ['Renewed', fmtTime(lease.renewed_at)]];
      clear(leader).append(h('h2', { text: 'Leader' }),
        h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: String(v) })])));
      if (!periodic.length) {
        clear(list).appendChild(h('p', { class: 'muted', text: 'No periodic schedule (scheduler.periodic in taskq.toml).' }));
        return;
      }
      clear(list).appendChild(h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Name', 'Cron', 'Zone', 'Kind', 'Queue', 'Last fire', 'Next fire', 'State', '']
          .map((t) => h('th', { text: t })))),
        h('tbody', {}, periodic.map((p) => h('tr', { 'data-name': p.name },
          h('td', { 'data-label': 'Name', text: p.name }),
          h('td', { 'data-label': 'Cron' }, h('code', { text: p.cron })),
          h('td', { 'data-label': 'Zone', text: p.timezone }),
          h('td', { 'data-label': 'Kind', text: p.kind }),
          h('td', { 'data-label': 'Queue', text: p.queue }),
          h('td', { 'data-label': 'Last fire', text: fmtTime(p.last_fire_at) }),
          h('td', { 'data-label': 'Next fire', text: p.paused_at ? '–' : fmtTime(p.next_fire_at) }),
          h('td', { 'data-label': 'State' }, h('span', { class: 'badge ' + (p.paused_at ? 'paused' : 'worker-live'),
            text: p.paused_at ? 'paused' : 'active' })),
          h('td', { class: 'row-actions' }, p.paused_at ? button(p, 'resume', 'Resume') : button(p, 'pause', 'Pause'),
            button(p, 'trigger', 'Trigger'))))))));
    } catch (e) {
      if (!ctx.signal.aborted) ctx.showBanner(e.message);
    }
  }
  load();
  const t = setInterval(load, 5000);
  ctx.signal.addEventListener('abort', () => clearInterval(t));
}
