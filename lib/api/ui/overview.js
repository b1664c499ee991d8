// Overview: per queue its counts by state, finished jobs per minute over the last 5 and 60
// minutes, the age of its oldest available job, and pause/resume. Live: events of every queue
// only mark what changed; counts are read again at most once a second and the page is drawn at
// most every 250 ms, whatever the event rate.
import { api, follow } from './api.js';
import { barChart } from './chart.js';
import { clear, fmtAge, fmtCount, h, throttle } from './dom.js';

const STATES = ['scheduled', 'available', 'running', 'completed', 'failed', 'cancelled'];
const MINUTE = 60000;

export function mountOverview(main, ctx) {
  const { signal } = ctx;
  const totals = h('div', { class: 'totals' });
  const grid = h('div', { class: 'queues', id: 'queues' });
  const summary = h('p', { class: 'muted', id: 'event-rate' });
  main.append(h('div', { class: 'title' }, h('h1', { text: 'Overview' }), summary), totals, grid);

  let stats = [];
  let asOf = 0; // the database's current minute (ms), from /v1/throughput
  const perMinute = new Map(); // queue -> Map(minute ms -> {completed, failed})
  let events = 0;
  let eventsShown = 0;
  let lastRate = performance.now();
  const cards = new Map(); // queue -> {root, update}

  function bucketsOf(queue, minutes) {
    const m = perMinute.get(queue);
    const out = [];
    for (let i = minutes - 1; i >= 0; i--) {
      const b = m && m.get(asOf - i * MINUTE);
      out.push(b ? { completed: b.completed, failed: b.failed } : { completed: 0, failed: 0 });
    }
    return out;
  }

  function card(queue) {
    const counts = {};
    const cells = STATES.map((s) => {
      counts[s] = h('span', { class: 'n', text: '0' });
      return h('div', { class: 'count state-' + s }, counts[s], h('span', { class: 'l', text: s }));
    });
    const name = h('h2', { class: 'qname', text: queue });
    const paused = h('span', { class: 'badge paused', text: 'paused', hidden: true });
    const toggle = h('button', { type: 'button', class: 'small', text: 'Pause' });
    const backlog = h('span', { class: 'backlog' });
    const rate = h('span', { class: 'rate' });
    const c5 = h('div', { class: 'chart-box' });
    const c60 = h('div', { class: 'chart-box' });
    const root = h('section', { class: 'card queue', 'data-queue': queue },
      h('div', { class: 'qhead' }, name, paused, toggle),
      h('div', { class: 'counts' }, cells),
      h('div', { class: 'charts' },
        h('figure', {}, c5, h('figcaption', { text: 'last 5 min' })),
        h('figure', {}, c60, h('figcaption', { text: 'last 60 min' }))),
      h('div', { class: 'qfoot' }, h('span', {}, 'oldest available: ', backlog), rate));
    let isPaused = false;
    let drawn = '';
    let drawnAt = -Infinity;
    toggle.addEventListener('click', async () => {
      const verb = isPaused ? 'resume' : 'pause';
      const r = await ctx.act(() => api(`/v1/queues/${encodeURIComponent(queue)}/${verb}`, { method: 'POST' }),
        () => `Queue ${queue}: ${verb === 'pause' ? 'paused' : 'resumed'}`);
      if (r) refresh();
    });
    const update = (q) => {
      for (const s of STATES) counts[s].textContent = fmtCount(q[s]);
      isPaused = q.paused;
      paused.hidden = !q.paused;
      toggle.textContent = q.paused ? 'Resume' : 'Pause';
      root.classList.toggle('is-paused', q.paused);
      backlog.textContent = fmtAge(q.oldest_available_age_ms);
      rate.textContent = fmtCount(q.finished_last_minute) + ' finished/min';
      const b60 = bucketsOf(queue, 60);
      const key = b60.map((b) => b.completed + '/' + b.failed).join(',');
      // Charts are redrawn when they changed, at most once a second per queue.
      if (key === drawn || performance.now() - drawnAt < 1000) return;
      drawn = key;
      drawnAt = performance.now();
      clear(c5).appendChild(barChart(b60.slice(55), { label: queue + ', last 5 minutes' }));
      clear(c60).appendChild(barChart(b60, { label: queue + ', last 60 minutes' }));
    };
    return { root, update };
  }

  function render() {
    const sum = Object.fromEntries(STATES.map((s) => [s, 0]));
    for (const q of stats) for (const s of STATES) sum[s] += q[s];
    clear(totals).append(...STATES.map((s) =>
      h('div', { class: 'total state-' + s }, h('span', { class: 'n', text: fmtCount(sum[s]) }),
        h('span', { class: 'l', text: s }))));
    const seen = new Set();
    for (const q of stats) {
      seen.add(q.queue);
      let c = cards.get(q.queue);
      if (!c) {
        c = card(q.queue);
        cards.set(q.queue, c);
      }
      if (c.root.parentNode !== grid) grid.appendChild(c.root);
      c.update(q);
    }
    for (const [name, c] of cards) if (!seen.has(name)) { c.root.remove(); cards.delete(name); }
    if (!stats.length && !grid.querySelector('.empty'))
      grid.appendChild(h('p', { class: 'muted empty', text: 'No queues yet: enqueue a job.' }));
    else if (stats.length) grid.querySelector('.empty')?.remove();
    const now = performance.now();
    if (now - lastRate >= 1000) {
      summary.textContent = fmtCount(Math.round(((events - eventsShown) * 1000) / (now - lastRate))) + ' events/s';
      eventsShown = events;
      lastRate = now;
    }
  }
  const draw = throttle(render, 250);

  async function refresh() {
    try {
      stats = (await api('/v1/stats')).queues;
      draw();
    } catch (e) {
      if (!signal.aborted) ctx.showBanner(e.message);
    }
  }
  const refreshSoon = throttle(refresh, 1000);

  async function loadThroughput() {
    try {
      const t = await api('/v1/throughput?minutes=60');
      asOf = Date.parse(t.as_of);
      perMinute.clear();
      for (const b of t.buckets) {
        if (!perMinute.has(b.queue)) perMinute.set(b.queue, new Map());
        perMinute.get(b.queue).set(Date.parse(b.minute), { completed: b.completed, failed: b.failed });
      }
      draw();
    } catch (e) {
      if (!signal.aborted) ctx.showBanner(e.message);
    }
  }

  // A finished job counts in the current minute until the next read of /v1/throughput.
  function onEvent(name, ev) {
    events++;
    if (name === 'state' && (ev.state === 'completed' || ev.state === 'failed')) {
      if (!perMinute.has(ev.queue)) perMinute.set(ev.queue, new Map());
      const m = perMinute.get(ev.queue);
      const b = m.get(asOf) || { completed: 0, failed: 0 };
      b[ev.state]++;
      m.set(asOf, b);
    }
    refreshSoon();
    draw();
  }

  refresh();
  loadThroughput();
  follow('/v1/events', onEvent, { signal, onStatus: ctx.setLive, onOpen: refresh });
  const timers = [setInterval(refresh, 5000), setInterval(loadThroughput, 30000)];
  signal.addEventListener('abort', () => timers.forEach(clearInterval));
}
