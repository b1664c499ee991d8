// Talking to /v1 with the token the user pasted (sessionStorage; sent as a bearer header, never
// a cookie) and reading event streams with fetch(), since EventSource cannot send the header.
const TOKEN_KEY = 'taskq.token';
const MAX_PENDING = 1 << 20; // an event stream line longer than this ends the connection
const BURST = 1000; // events handled before the page gets a turn

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function headers(extra) {
  return Object.assign({ Authorization: 'Bearer ' + token.get() }, extra);
}

// A JSON request; throws ApiError with the API's error code and message.
// `quiet`: a 401 is only thrown, not also a sign-out (the sign-in form's own check).
export async function api(path, { method = 'GET', body, quiet = false } = {}) {
  const init = { method, headers: headers(), cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'taskq-apid cannot be reached');
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : null;
    if (res.status === 401 && !quiet) onUnauthorized();
    throw new ApiError(res.status, err ? err.code : 'http_' + res.status, err ? err.message : 'HTTP ' + res.status);
  }
  return data;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// Parses a text/event-stream body, calling onEvent(name, data) for each event; returns true
// when `last(name)` said the stream is over.
async function readEvents(body, onEvent, last) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  let name = '';
  let data = [];
  let handled = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    pending += value;
    // One pass over the chunk (a chunk may hold thousands of events): the rest is kept once.
    let start = 0;
    let nl;
    while ((nl = pending.indexOf('\n', start)) >= 0) {
      let line = pending.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) {
          let parsed = null;
          try {
            parsed = JSON.parse(data.join('\n'));
          } catch (e) {
            parsed = null;
          }
          const event = name || 'message';
          if (parsed !== null) onEvent(event, parsed);
          if (last(event)) {
            reader.cancel().catch(() => {});
            return true;
          }
          // A burst is handled in slices, so the page still draws and answers clicks meanwhile.
          if (++handled % BURST === 0) await new Promise((resolve) => setTimeout(resolve, 0));
        }
        name = '';
        data = [];
        continue;
      }
      if (line[0] === ':') continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? '' : line.slice(colon + 1);
      if (v[0] === ' ') v = v.slice(1);
      if (field === 'event') name = v;
      else if (field === 'data') data.push(v);
    }
    pending = pending.slice(start);
    if (pending.length > MAX_PENDING) throw new Error('event stream line too long');
  }
}

// Follows an event stream until `signal` aborts or an event `last(name)` accepts arrives,
// reconnecting with backoff (0.5 s doubling to 10 s). onStatus('live' | 'reconnecting').
export function follow(path, onEvent, { signal, onStatus = () => {}, onOpen = () => {}, last = () => false }) {
  (async () => {
    let delay = 500;
    while (!signal.aborted) {
      try {
        const res = await fetch(path, {
          headers: headers({ Accept: 'text/event-stream' }), signal, cache: 'no-store', credentials: 'omit',
        });
        if (res.status === 401) {
          onUnauthorized();
          return;
        }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        onStatus('live');
        onOpen();
        delay = 500;
        if (await readEvents(res.body, onEvent, last)) {
          onStatus('done');
          return;
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      onStatus('reconnecting');
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 10000);
    }
  })();
}
