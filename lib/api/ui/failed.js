// Failed jobs: the list under a filter, retry or cancel one, or every job the filter matches
// (admin) after a confirmation that shows how many a dry run counted.
import { api } from './api.js';
import { clear, h, hashQuery } from './dom.js';
import { filterForm, jobTable } from './jobs.js';

export function mountFailed(main, ctx) {
  const values = hashQuery();
  if (!values.get('state')) values.set('state', 'failed');
  const { form } = filterForm(values, ['failed', 'cancelled', 'scheduled', 'available', 'running'], (q) => {
    location.hash = '#/failed' + (q.toString() ? '?' + q : '');
  });
  form.append(h('button', { type: 'submit', class: 'primary', text: 'Apply' }));
  const retryAll = h('button', { type: 'button', class: 'primary', id: 'retry-all', text: 'Retry all matching…' });
  const cancelAll = h('button', { type: 'button', class: 'danger', id: 'cancel-all', text: 'Cancel all matching…' });
  const list = h('div', { id: 'failed-list' });
  main.append(h('div', { class: 'title' }, h('h1', { text: 'Failed jobs' }),
    h('div', { class: 'actions' }, retryAll, cancelAll)), form, list);

  function filter() {
    const f = {};
    for (const k of ['queue', 'state', 'kind', 'tag']) if (values.get(k)) f[k] = values.get(k);
    return f;
  }
  function describe(f) {
    return Object.entries(f).map(([k, v]) => k + ' = ' + v).join(', ');
  }

  async function bulk(verb) {
    const f = filter();
    const dry = await ctx.act(() => api('/v1/jobs/' + verb, { method: 'POST', body: Object.assign({ dry_run: true }, f) }));
    if (!dry) return;
    if (dry.count === 0) {
      ctx.showBanner(`No job matching ${describe(f)} can be ${verb === 'retry' ? 'retried' : 'cancelled'}.`, 'info');
      return;
    }
    const label = verb === 'retry' ? 'Retry' : 'Cancel';
    if (!(await ctx.confirm(`${label} ${dry.count} job(s) matching ${describe(f)}?`, `${label} ${dry.count}`))) return;
    const r = await ctx.act(() => api('/v1/jobs/' + verb, { method: 'POST', body: f }),
      (x) => `${label}: ${x.count} job(s) changed.`);
    if (r) load();
  }
  retryAll.addEventListener('click', () => bulk('retry'));
  cancelAll.addEventListener('click', () => bulk('cancel'));

  function rowActions(j) {
    const out = [];
    if (j.state !== 'running')
      out.push(['retry', 'Retry']);
    if (j.state === 'scheduled' || j.state === 'available' || j.state === 'running') out.push(['cancel', 'Cancel']);
    return out.map(([verb, label]) => {
      const b = h('button', { type: 'button', class: 'small', text: label, 'data-action': verb });
      b.addEventListener('click', async () => {
        if (!(await ctx.confirm(`${label} job #${j.id} (${j.kind})?`, label))) return;
        const r = await ctx.act(() => api(`/v1/jobs/${Number(j.id)}/${verb}`, { method: 'POST' }),
          (c) => `Job #${c.id}: ${c.from} → ${c.to}`);
        if (r) load();
      });
      return b;
    });
  }

  async function load() {
    const q = new URLSearchParams(filter());
    q.set('limit', '100');
    try {
      const page = await api('/v1/jobs?' + q);
      clear(list).appendChild(page.jobs.length ? jobTable(page.jobs, rowActions)
        : h('p', { class: 'muted', text: 'Nothing matches.' }));
      if (page.next_after !== null)
        list.appendChild(h('p', { class: 'muted', text: 'Showing the first 100; bulk actions apply to every match.' }));
    } catch (e) {
      if (!ctx.signal.aborted) ctx.showBanner(e.message);
    }
  }
  load();
}
