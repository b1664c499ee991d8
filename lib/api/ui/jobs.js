// Jobs: filters (queue, state, kind, tag; an id opens that job) and keyset pages (next_after),
// with the cursors of earlier pages kept for "Previous".
import { api } from './api.js';
import { clear, field, fmtTime, h, hashQuery, stateBadge } from './dom.js';

export const STATES = ['scheduled', 'available', 'running', 'completed', 'failed', 'cancelled'];

export function jobTable(jobs, extra) {
  const head = ['ID', 'Queue', 'Kind', 'State', 'Attempt', 'Created', 'Finished'];
  if (extra) head.push('');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'jobs' },
    h('thead', {}, h('tr', {}, head.map((t) => h('th', { text: t })))),
    h('tbody', {}, jobs.map((j) => h('tr', { 'data-id': j.id },
      h('td', { 'data-label': 'ID' }, h('a', { href: '#/job/' + Number(j.id), text: '#' + j.id })),
      h('td', { 'data-label': 'Queue', text: j.queue }),
      h('td', { 'data-label': 'Kind', class: 'kind', text: j.kind }),
      h('td', { 'data-label': 'State' }, stateBadge(j.state)),
      h('td', { 'data-label': 'Attempt', text: j.attempt + ' / ' + j.max_attempts }),
      h('td', { 'data-label': 'Created', text: fmtTime(j.created_at) }),
      h('td', { 'data-label': 'Finished', text: fmtTime(j.finished_at) }),
      extra ? h('td', { class: 'row-actions' }, extra(j)) : null)))));
}

export function filterForm(values, states, onSubmit) {
  const inputs = {
    queue: h('input', { name: 'queue', value: values.get('queue') || '', placeholder: 'any' }),
    state: h('select', { name: 'state' }, h('option', { value: '', text: 'any' }),
      states.map((s) => h('option', { value: s, text: s, selected: values.get('state') === s }))),
    kind: h('input', { name: 'kind', value: values.get('kind') || '', placeholder: 'any' }),
    tag: h('input', { name: 'tag', value: values.get('tag') || '', placeholder: 'any' }),
  };
  const form = h('form', { class: 'filters card' },
    field('Queue', inputs.queue), field('State', inputs.state), field('Kind', inputs.kind), field('Tag', inputs.tag));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, el] of Object.entries(inputs)) if (el.value.trim()) q.set(k, el.value.trim());
    onSubmit(q, form);
  });
  return { form, inputs };
}

export function mountJobs(main, ctx) {
  const values = hashQuery();
  const idInput = h('input', { name: 'id', inputmode: 'numeric', placeholder: 'job id' });
  const { form } = filterForm(values, STATES, (q) => {
    const id = idInput.value.trim();
    if (/^\d+$/.test(id)) {
      location.hash = '#/job/' + id;
      return;
    }
    location.hash = '#/jobs' + (q.toString() ? '?' + q : '');
  });
  form.append(field('ID', idInput), h('button', { type: 'submit', class: 'primary', text: 'Apply' }));
  const list = h('div', { id: 'job-list' });
  const pager = h('div', { class: 'pager' });
  main.append(h('div', { class: 'title' }, h('h1', { text: 'Jobs' })), form, list, pager);

  const cursors = []; // `after` of each page shown before this one
  let after = values.get('after') || '';
  async function load() {
    const q = new URLSearchParams();
    for (const k of ['queue', 'state', 'kind', 'tag']) if (values.get(k)) q.set(k, values.get(k));
    q.set('limit', '50');
    if (after) q.set('after', after);
    try {
      const page = await api('/v1/jobs?' + q);
      clear(list).appendChild(page.jobs.length ? jobTable(page.jobs) : h('p', { class: 'muted', text: 'No jobs match.' }));
      const prev = h('button', { type: 'button', text: '← Previous', disabled: cursors.length === 0 });
      const next = h('button', { type: 'button', text: 'Next →', disabled: page.next_after === null });
      prev.addEventListener('click', () => { after = cursors.pop(); load(); });
      next.addEventListener('click', () => { cursors.push(after); after = String(page.next_after); load(); });
      clear(pager).append(prev, h('span', { class: 'muted', text: 'page ' + (cursors.length + 1) }), next);
    } catch (e) {
      if (!ctx.signal.aborted) ctx.showBanner(e.message);
    }
  }
  load();
}
