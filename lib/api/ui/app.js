// The dashboard: a token to sign in, then one view per hash route (#/, #/jobs, #/job/ID,
// #/failed, #/workers, #/scheduler). Each view gets an AbortSignal that ends its requests,
// streams and timers when another view replaces it.
import { api, ApiError, setUnauthorizedHandler, token } from './api.js';
import { clear, field, h } from './dom.js';
import { mountOverview } from './overview.js';
import { mountJobs } from './jobs.js';
import { mountJob } from './job.js';
import { mountFailed } from './failed.js';
import { mountWorkers } from './workers.js';
import { mountScheduler } from './scheduler.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const live = document.getElementById('live');
const logout = document.getElementById('logout');
const banner = document.getElementById('banner');
let current = null; // the AbortController of the view shown

function showBanner(message, kind = 'error') {
  banner.textContent = message;
  banner.className = 'banner ' + kind;
  banner.hidden = !message;
}

function setLive(status) {
  live.textContent = status;
  live.className = 'live is-' + status;
}

function confirmDialog(text, action = 'Confirm') {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  const yes = document.getElementById('confirm-yes');
  yes.textContent = action;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      yes.onclick = null;
      document.getElementById('confirm-no').onclick = null;
      resolve(answer);
    };
    yes.onclick = () => done(true);
    document.getElementById('confirm-no').onclick = () => done(false);
    dialog.oncancel = () => done(false);
    dialog.showModal();
  });
}

// Runs an action, showing its error (or `success`) in the banner; returns whether it worked.
async function act(fn, success) {
  try {
    const r = await fn();
    showBanner(success ? success(r) : '', 'info');
    return r;
  } catch (e) {
    showBanner(e instanceof ApiError ? e.message + ' (' + e.code + ')' : String(e));
    return undefined;
  }
}

function signIn(message) {
  token.clear();
  if (current) current.abort();
  current = null;
  nav.hidden = live.hidden = logout.hidden = true;
  showBanner(message || '');
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true,
    placeholder: 'paste a bearer token' });
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'login card', id: 'login' },
    h('h1', { text: 'Sign in to taskq' }),
    h('p', { class: 'muted', text: 'Paste an API token ([[api.tokens]] in taskq.toml). It stays in this tab only.' }),
    field('Token', input), error,
    h('button', { type: 'submit', class: 'primary', text: 'Sign in' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    token.set(input.value.trim());
    try {
      await api('/v1/stats', { quiet: true });
      showBanner('');
      location.hash = location.hash && location.hash !== '#/login' ? location.hash : '#/';
      route();
    } catch (e) {
      token.clear();
      error.textContent = e instanceof ApiError ? e.message : String(e);
    }
  });
  clear(main).appendChild(form);
  input.focus();
}

const views = [
  [/^#?\/?$/, 'overview', () => mountOverview],
  [/^#\/jobs(\?.*)?$/, 'jobs', () => mountJobs],
  [/^#\/job\/(\d+)$/, 'jobs', (m) => (el, ctx) => mountJob(el, ctx, m[1])],
  [/^#\/failed(\?.*)?$/, 'failed', () => mountFailed],
  [/^#\/workers$/, 'workers', () => mountWorkers],
  [/^#\/scheduler$/, 'scheduler', () => mountScheduler],
];

function route() {
  if (!token.get()) return signIn();
  if (current) current.abort();
  current = new AbortController();
  nav.hidden = live.hidden = logout.hidden = false;
  setLive('idle');
  const hash = location.hash || '#/';
  let mount = null;
  let name = '';
  for (const [re, view, make] of views) {
    const m = hash.match(re);
    if (m) {
      mount = make(m);
      name = view;
      break;
    }
  }
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.view === name);
  clear(main);
  if (!mount) {
    main.appendChild(h('p', { class: 'muted', text: 'No such page.' }));
    return;
  }
  mount(main, { signal: current.signal, setLive, showBanner, confirm: confirmDialog, act });
}

setUnauthorizedHandler(() => signIn('The token was refused (401): sign in again.'));
logout.addEventListener('click', () => signIn('Signed out.'));
window.addEventListener('hashchange', () => {
  showBanner('');
  route();
});
route();
