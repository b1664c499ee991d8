// Building the page from data without ever parsing it as HTML: every string from the API becomes
// a text node, and the only links are the dashboard's own (#/...), built from numbers.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'href') el.setAttribute('href', safeHref(v));
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Only the dashboard's own routes: anything else (javascript:, data:, other sites) becomes '#'.
export function safeHref(v) {
  const s = String(v);
  return /^#\/[A-Za-z0-9/?=&%._-]*$/.test(s) ? s : '#';
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function json(value) {
  return h('pre', { class: 'json', text: value === undefined ? 'null' : JSON.stringify(value, null, 2) });
}

export function stateBadge(state) {
  return h('span', { class: 'badge state-' + (/^[a-z]+$/.test(state) ? state : 'unknown'), text: state });
}

export function fmtAge(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = Math.max(0, ms) / 1000;
  if (s < 1) return Math.round(ms) + ' ms';
  if (s < 60) return s.toFixed(1) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' m ' + Math.floor(s % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' m';
  return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}

export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function fmtCount(n) {
  return Number(n || 0).toLocaleString('en-US');
}

// Calls fn at most once per `ms` (and in an animation frame), however often it is asked for:
// events only mark what changed, rendering follows.
export function throttle(fn, ms = 250) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - performance.now());
    timer = setTimeout(() => {
      requestAnimationFrame(() => {
        timer = null;
        last = performance.now();
        fn();
      });
    }, wait);
  };
}

// The hash route's query: "#/jobs?queue=a&state=failed" -> URLSearchParams.
export function hashQuery() {
  const q = location.hash.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : location.hash.slice(q + 1));
}

export function field(label, input) {
  return h('label', { class: 'field' }, h('span', { text: label }), input);
}
