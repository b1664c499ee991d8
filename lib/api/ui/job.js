// One job: args, metadata, result, a live progress bar, every attempt's error with its stderr
// tail, and a timeline. Live over GET /v1/jobs/{id}/events until the job is final.
import { api, follow } from './api.js';
import { clear, fmtTime, h, json, stateBadge, throttle } from './dom.js';

const FINAL = new Set(['completed', 'failed', 'cancelled']);

function timeline(job) {
  const items = [
    [job.created_at, 'created'],
    [job.run_at, 'due to run'],
    [job.attempted_at, 'attempt ' + job.attempt + ' started'],
  ];
  for (const e of job.errors || []) items.push([e.at, 'attempt ' + e.attempt + ' failed']);
  if (job.cancel_requested_at) items.push([job.cancel_requested_at, 'cancel requested']);
  if (job.finished_at) items.push([job.finished_at, job.state]);
  return h('ol', { class: 'timeline' }, items.filter(([t]) => t).sort((a, b) => Date.parse(a[0]) - Date.parse(b[0]))
    .map(([t, what]) => h('li', {}, h('time', { text: fmtTime(t) }), h('span', { text: what }))));
}

function errorsOf(job) {
  const errors = job.errors || [];
  if (!errors.length) return h('p', { class: 'muted', text: 'No failed attempts.' });
  return h('div', { class: 'errors' }, errors.map((e) => h('div', { class: 'attempt-error' },
    h('div', { class: 'attempt-head' },
      h('strong', { text: 'Attempt ' + e.attempt }), h('span', { class: 'muted', text: fmtTime(e.at) }),
      e.exit_status !== undefined ? h('span', { class: 'muted', text: 'exit ' + e.exit_status }) : null,
      e.signal !== undefined ? h('span', { class: 'muted', text: 'signal ' + e.signal }) : null),
    h('p', { class: 'message', text: e.message || '' }),
    e.stderr_tail ? h('pre', { class: 'stderr', text: e.stderr_tail }) : null)));
}

export function mountJob(main, ctx, id) {
  const { signal } = ctx;
  let job = null;
  let progress = null;
  const head = h('div', { class: 'title' });
  const bar = h('progress', { id: 'progress', max: 100 });
  const barText = h('span', { class: 'progress-text', id: 'progress-text' });
  const body = h('div', { class: 'job-body' });
  main.append(head, h('section', { class: 'card progress-card' }, h('h2', { text: 'Progress' }), bar, barText), body);

  function actions() {
    const out = [];
    if (!FINAL.has(job.state)) out.push(['cancel', 'Cancel']);
    if (job.state !== 'running') out.push(['retry', 'Retry']);
    return out.map(([verb, label]) => {
      const b = h('button', { type: 'button', class: verb === 'cancel' ? 'danger' : 'primary', text: label,
        id: 'job-' + verb });
      b.addEventListener('click', async () => {
        if (!(await ctx.confirm(`${label} job #${job.id} (${job.kind})?`, label))) return;
        const r = await ctx.act(() => api(`/v1/jobs/${job.id}/${verb}`, { method: 'POST' }),
          (c) => `Job #${c.id}: ${c.from} → ${c.to}`);
        if (r) start();
      });
      return b;
    });
  }

  function render() {
    if (!job) return;
    clear(head).append(h('h1', {}, 'Job #' + job.id + ' ', stateBadge(job.state)),
      h('div', { class: 'actions' }, actions()));
    const p = progress || job.progress;
    const pct = p && typeof p.percent === 'number' ? Math.max(0, Math.min(100, p.percent)) : null;
    if (job.state === 'completed') bar.value = 100;
    else if (pct !== null) bar.value = pct;
    else bar.removeAttribute('value');
    bar.dataset.state = job.state;
    barText.textContent = (job.state === 'completed' ? '100%' : pct !== null ? pct + '%' : job.state === 'running' ? 'running' : job.state) +
      (p && typeof p.message === 'string' && p.message ? ' — ' + p.message : '');
    const facts = [['Queue', job.queue], ['Kind', job.kind], ['Priority', job.priority],
      ['Attempt', job.attempt + ' / ' + job.max_attempts], ['Worker', job.worker_id ?? '–'],
      ['Tags', (job.tags || []).join(', ') || '–'], ['Unique key', job.unique_key ?? '–'],
      ['Timeout', job.timeout ?? '–']];
    clear(body).append(
      h('section', { class: 'card' }, h('h2', { text: 'Details' }),
        h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: String(v) })]))),
      h('section', { class: 'card' }, h('h2', { text: 'Timeline' }), timeline(job)),
      h('section', { class: 'card wide' }, h('h2', { text: 'Args' }), json(job.args)),
      h('section', { class: 'card' }, h('h2', { text: 'Metadata' }), json(job.metadata)),
      h('section', { class: 'card' }, h('h2', { text: 'Result' }), json(job.result)),
      h('section', { class: 'card wide' }, h('h2', { text: 'Errors' }), errorsOf(job)));
  }
  const draw = throttle(render, 250);

  let stream = null;
  function start() {
    if (stream) stream.abort();
    stream = new AbortController();
    signal.addEventListener('abort', () => stream.abort(), { once: true });
    follow(`/v1/jobs/${id}/events`, (name, data) => {
      if (name === 'state' && data.args !== undefined) {
        job = data;
        progress = null;
      }
      else if (name === 'state' && job) Object.assign(job, data);
      else if (name === 'progress') progress = data.progress;
      draw();
    }, {
      signal: stream.signal,
      onStatus: ctx.setLive,
      last: (name) => name === 'end',
    });
  }
  api('/v1/jobs/' + id).then((j) => {
    job = j;
    render();
    start();
  }).catch((e) => {
    if (!signal.aborted) clear(head).append(h('h1', { text: 'Job #' + id }), h('p', { class: 'error', text: e.message }));
  });
}
