// The /ui dashboard of taskq-apid in a real browser: Debian's chromium, driven by the pinned
// playwright-core. Starts taskq-apid and taskq-workerd on a fresh schema of
// TASKQ_TEST_DATABASE_URL, enqueues with taskctl, and checks, in order:
//   1. sign in with a token (a wrong one is refused);
//   2. a job enqueued with taskctl appears live on the overview, and its page shows its progress
//      live and then its completion;
//   3. a failed job retried from the Failed page (bulk retry, with its confirmation) completes;
//   4. a queue paused and resumed from the overview is paused and resumed in the API;
//   5. the XSS corpus (args, kind, queue, tags, metadata, result, errors, stderr) shows as text:
//      no dialog, no script run, no element made from data, no CSP violation;
//   6. a periodic schedule is paused, resumed and triggered from the Scheduler page;
//   7. with 100 queues and events offered as fast as the page takes them (synthetic, through
//      page.route), the overview keeps drawing frames (rendering is throttled; the rate it
//      handles is printed);
// writing screenshots (overview, job, phone width, ...) under the build tree ($BROWSER_OUT).
// Usage: node run.mjs APID WORKERD TASKCTL (tests/browser/run sets BROWSER_NODE_MODULES).
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(path.join(process.env.BROWSER_NODE_MODULES, 'x.js'));
const { chromium } = require('playwright-core');

const [apidPath, workerdPath, taskctlPath] = process.argv.slice(2);
const dbUrl = process.env.TASKQ_TEST_DATABASE_URL;
if (!dbUrl) {
  console.error('browser tests: set TASKQ_TEST_DATABASE_URL (scripts/pg url ...)');
  process.exit(1);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.env.BROWSER_OUT;
mkdirSync(out, { recursive: true });
const dir = mkdtempSync(path.join(tmpdir(), 'taskq-ui-'));
const schema = 'ui_browser_' + process.pid;
const ADMIN = 'admin-token-' + process.pid;
const READ = 'read-token-' + process.pid;
const sha = (t) => createHash('sha256').update(t).digest('hex');
const env = { PATH: '/usr/bin:/bin', TASKQ_DATABASE_URL: dbUrl, TASKQ_SCHEMA: schema };
const STEP_TIMEOUT = 15000;

const config = `[database]
url = "${dbUrl}"
schema = "${schema}"
[log]
level = "info"
[api]
listen = ["127.0.0.1:0"]
db_pool = 4
[[api.tokens]]
name = "admin"
sha256 = "${sha(ADMIN)}"
scopes = ["admin"]
[[api.tokens]]
name = "reader"
sha256 = "${sha(READ)}"
scopes = ["read"]
[worker]
queues = { default = 4, "ui-live" = 2, "ui-flaky" = 2, "ui-xss" = 2, "\\"><img src=x onerror=alert(7)>" = 1 }
poll_interval = "100ms"
[kinds.steps]
exec = ["${here}/handler.sh"]
env = { UI_TEST_DIR = "${dir}" }
[kinds.flaky]
exec = ["${here}/handler.sh"]
env = { UI_TEST_DIR = "${dir}" }
[kinds.xss]
exec = ["${here}/handler.sh"]
env = { UI_TEST_DIR = "${dir}" }
`;
writeFileSync(path.join(dir, 'taskq.toml'), config, { mode: 0o600 });

const children = [];
function start(bin, args, name) {
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.log = '';
  const keep = (d) => {
    child.log += d;
    if (child.log.length > 200000) child.log = child.log.slice(-100000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.name = name;
  children.push(child);
  return child;
}

async function until(what, fn, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function taskctl(...args) {
  return execFileSync(taskctlPath, args, { env, encoding: 'utf8', timeout: 20000 }).trim();
}

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  try {
    execFileSync('psql', [dbUrl, '-qc', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`], { stdio: 'ignore', timeout: 20000 });
  } catch (e) {
    // the throwaway cluster goes anyway
  }
  rmSync(dir, { recursive: true, force: true });
}

const results = [];
async function scenario(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([true, name]);
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([false, name]);
    console.log(`not ok - ${name}\n  ${String(e.stack || e).split('\n').join('\n  ')}`);
  }
}

let context;
try {
  taskctl('migrate');
  const apid = start(apidPath, ['--config', path.join(dir, 'taskq.toml')], 'taskq-apid');
  const workerd = start(workerdPath, ['--config', path.join(dir, 'taskq.toml')], 'taskq-workerd');
  const port = await until('taskq-apid to listen', () => {
    const m = apid.log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (apid.exitCode !== null) throw new Error('taskq-apid exited:\n' + apid.log);
    return m && Number(m[1]);
  });
  const base = `http://127.0.0.1:${port}`;
  const apiGet = async (p) => (await fetch(base + p, { headers: { Authorization: 'Bearer ' + ADMIN } })).json();
  await until('taskq-workerd to register', async () => {
    if (workerd.exitCode !== null) throw new Error('taskq-workerd exited:\n' + workerd.log);
    return (await apiGet('/v1/workers')).workers.length > 0;
  });

  // A fresh profile of its own (--user-data-dir), removed with the test's directory.
  context = await chromium.launchPersistentContext(path.join(dir, 'chromium'), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
    viewport: { width: 1366, height: 860 },
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const dialogs = [];
  const pageErrors = [];
  const page = await context.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
  });
  const shot = (name) => page.screenshot({ path: path.join(out, name + '.png'), fullPage: true });

  await scenario('sign in with a token', async () => {
    const resp = await page.goto(base + '/ui');
    assert.match(resp.headers()['content-security-policy'], /default-src 'none'; script-src 'self'/);
    await page.locator('#token').fill('not-a-token');
    await page.locator('#login button[type=submit]').click();
    await page.locator('#login .error').filter({ hasText: /token/i }).waitFor();
    assert.equal(await page.locator('#nav').isVisible(), false, 'a refused token must not sign in');
    await page.locator('#token').fill(ADMIN);
    await page.locator('#login button[type=submit]').click();
    await page.locator('#nav').waitFor({ state: 'visible' });
    await page.locator('h1', { hasText: 'Overview' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('taskq.token')), ADMIN);
    assert.equal(await page.evaluate(() => document.cookie), '', 'no cookie');
  });

  let liveId = 0;
  await scenario('a job enqueued with taskctl appears and completes live with its progress', async () => {
    await page.goto(base + '/ui#/');
    await page.locator('#live.is-live').waitFor(); // the event stream is open
    liveId = Number(taskctl('enqueue', 'steps', '{"n": 1}', '--queue', 'ui-live'));
    const card = page.locator('section.queue[data-queue="ui-live"]');
    await card.waitFor();
    await until('the job to run', async () => Number(await card.locator('.state-running .n').textContent()) === 1);
    await shot('overview');
    await page.goto(`${base}/ui#/job/${liveId}`);
    await page.locator('#progress-text', { hasText: '50% — halfway' }).waitFor();
    await page.locator('h1 .badge', { hasText: 'running' }).waitFor();
    assert.equal(await page.locator('#progress').getAttribute('value'), '50');
    await shot('job-running');
    writeFileSync(path.join(dir, 'go-' + liveId), '');
    await page.locator('h1 .badge', { hasText: 'completed' }).waitFor();
    assert.equal(await page.locator('#progress').getAttribute('value'), '100');
    await page.locator('pre.json', { hasText: '"steps": 2' }).waitFor();
    await shot('job');
  });

  await scenario('retry a failed job from the UI and watch it complete', async () => {
    const id = Number(taskctl('enqueue', 'flaky', '{}', '--queue', 'ui-flaky'));
    await until('the job to fail', () => taskctl('-o', 'json', 'show', String(id)).includes('"state":"failed"'));
    await page.goto(`${base}/ui#/failed?kind=flaky`);
    await page.locator(`#failed-list tr[data-id="${id}"]`).waitFor();
    await shot('failed');
    await page.locator('#retry-all').click();
    await page.locator('#confirm-text', { hasText: 'Retry 1 job(s) matching state = failed, kind = flaky?' }).waitFor();
    await page.locator('#confirm-yes').click();
    await page.locator('#banner', { hasText: 'Retry: 1 job(s) changed.' }).waitFor();
    await page.goto(`${base}/ui#/job/${id}`);
    await page.locator('h1 .badge', { hasText: 'completed' }).waitFor();
    await page.locator('pre.stderr', { hasText: 'flaky: first attempt fails' }).waitFor();
    await page.locator('pre.json', { hasText: 'time lucky' }).waitFor();
  });

  await scenario('pause and resume a queue', async () => {
    await page.goto(base + '/ui#/');
    const card = page.locator('section.queue[data-queue="ui-live"]');
    await card.locator('button', { hasText: 'Pause' }).click();
    await card.locator('.badge.paused').waitFor({ state: 'visible' });
    const paused = (await apiGet('/v1/queues')).queues.find((q) => q.queue === 'ui-live');
    assert.equal(paused.paused, true);
    await shot('overview-paused');
    await card.locator('button', { hasText: 'Resume' }).click();
    await card.locator('.badge.paused').waitFor({ state: 'hidden' });
    const resumed = (await apiGet('/v1/queues')).queues.find((q) => q.queue === 'ui-live');
    assert.equal(resumed.paused, false);
  });

  await scenario('the XSS corpus renders as text and runs nothing', async () => {
    const payloads = {
      script: '<script>window.__xss = "script"</script>',
      attr: '"><img src=x onerror="window.__xss = 2">',
      url: 'javascript:window.__xss = 3',
      svg: '<svg onload="window.__xss = 4"></svg>',
      iframe: '<iframe src="javascript:window.__xss = 5"></iframe>',
    };
    const evilQueue = '"><img src=x onerror=alert(7)>';
    const ids = [
      taskctl('enqueue', 'xss', JSON.stringify(payloads), '--queue', 'ui-xss', '--tag', '<b>bold</b>',
        '--meta', 'link=javascript:alert(1)'),
      taskctl('enqueue', '<img src=x onerror=alert(8)>', JSON.stringify(payloads), '--queue', 'ui-xss'),
      taskctl('enqueue', 'xss', '{"a": "<script>alert(9)</script>"}', '--queue', evilQueue),
    ].map(Number);
    for (const id of ids)
      await until(`job ${id} to finish`, () => /"state":"(completed|failed)"/.test(taskctl('-o', 'json', 'show', String(id))));
    const check = async (where) => {
      assert.deepEqual(dialogs, [], `no dialog on ${where}`);
      assert.equal(await page.evaluate(() => window.__xss), undefined, `no script ran on ${where}`);
      assert.equal(await page.locator('main img, main script, main iframe, main svg[onload], main b').count(), 0,
        `no element made from data on ${where}`);
      assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], `no CSP violation on ${where}`);
      assert.deepEqual(pageErrors, [], `no page error on ${where}`);
    };
    await page.goto(base + '/ui#/');
    await page.locator('section.queue h2', { hasText: evilQueue }).waitFor();
    await check('the overview');
    await page.goto(base + '/ui#/jobs?queue=ui-xss');
    await page.locator('td.kind', { hasText: '<img src=x onerror=alert(8)>' }).waitFor();
    await check('the jobs list');
    await page.goto(`${base}/ui#/job/${ids[0]}`);
    await page.locator('pre.json', { hasText: payloads.attr.replace(/"/g, '\\"') }).first().waitFor();
    await page.locator('pre.json', { hasText: '<img src=x onerror=' }).last().waitFor(); // the result
    await page.locator('dd', { hasText: '<b>bold</b>' }).waitFor();
    await shot('job-xss');
    await check('a job page');
    await page.goto(`${base}/ui#/job/${ids[1]}`);
    await page.locator('.attempt-error .message').first().waitFor();
    await check('a failed job page');
    const links = await page.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.ok(links.every((h) => h.startsWith('#')), 'every link is the dashboard\'s own: ' + links.join(' '));
  });

  await scenario('pause, resume and trigger a periodic schedule', async () => {
    // The row a leading taskq-schedulerd records for a [[scheduler.periodic]] table.
    execFileSync('psql', [dbUrl, '-qc', `INSERT INTO "${schema}".periodic (name, schedule, kind, queue) ` +
      "VALUES ('nightly', '30 2 * * *', 'noop', 'default')"], { timeout: 20000 });
    await page.goto(base + '/ui#/scheduler');
    const row = page.locator('tr[data-name="nightly"]');
    await row.locator('button[data-action=pause]').click();
    await row.locator('.badge', { hasText: 'paused' }).waitFor();
    assert.notEqual((await apiGet('/v1/periodic')).periodic[0].paused_at, null);
    await row.locator('button[data-action=resume]').click();
    await row.locator('.badge', { hasText: 'active' }).waitFor();
    assert.equal((await apiGet('/v1/periodic')).periodic[0].paused_at, null);
    await row.locator('button[data-action=trigger]').click();
    await page.locator('#confirm-yes').click();
    const banner = await page.locator('#banner', { hasText: /Schedule nightly: enqueued job #\d+/ }).textContent();
    const id = banner.match(/#(\d+)/)[1];
    const job = await apiGet('/v1/jobs/' + id);
    assert.equal(job.metadata.trigger, 'manual');
    await shot('scheduler');
  });

  await scenario('100 queues and a flood of events: the overview keeps drawing', async () => {
    // Synthetic: /v1/stats answers 100 queues and every /v1/events request gets 40,000 events at
    // once; the page asks again 0.5 s after it has handled them, so the rate between its
    // requests is the rate at which it handles events (body transfer through the browser's
    // debugging protocol included). The figure depends on the machine; the test holds the
    // page to drawing frames (under a second apart) and handling thousands of events a second.
    const p = await context.newPage();
    await p.addInitScript((t) => sessionStorage.setItem('taskq.token', t), ADMIN);
    const name = (i) => 'load-' + String(i).padStart(3, '0');
    const queues = Array.from({ length: 100 }, (_, i) => ({
      queue: name(i), paused: i % 10 === 0, paused_at: null, scheduled: 0, available: i, running: 1,
      completed: 1000 + i, failed: i % 7, cancelled: 0, finished_last_minute: 600, oldest_available_age_ms: 1500,
    }));
    await p.route('**/v1/stats', (r) => r.fulfill({ json: { totals: {}, queues } }));
    const PER_STREAM = 40000;
    let body = '';
    for (let i = 0; i < PER_STREAM; i++)
      body += `event: state\ndata: {"id":${i},"queue":"${name(i % 100)}","kind":"k","state":"${i % 10 ? 'completed' : 'failed'}","attempt":1}\n\n`;
    let served = 0;
    const asked = [];
    await p.route('**/v1/events', (r) => {
      served++;
      asked.push(Date.now());
      return r.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body });
    });
    await p.goto(base + '/ui#/');
    await until('100 queue cards', async () => (await p.locator('section.queue').count()) === 100);
    await until('4 streams of events', () => served >= 4, 60000);
    // Frames keep coming while events pour in: the longest gap between two animation frames.
    const frames = await p.evaluate(() => new Promise((resolve) => {
      let last = performance.now();
      let longest = 0;
      let n = 0;
      const step = (t) => {
        longest = Math.max(longest, t - last);
        last = t;
        if (++n < 90) requestAnimationFrame(step);
        else resolve({ longest, n });
      };
      requestAnimationFrame(step);
    }));
    const rate = ((asked.length - 1) * PER_STREAM * 1000) / (asked[asked.length - 1] - asked[0]);
    console.log(`  ${served} streams, ${Math.round(rate)} events/s handled, longest frame gap ${Math.round(frames.longest)} ms`);
    assert.ok(rate > 2000, `the page handled only ${Math.round(rate)} events/s`);
    assert.ok(frames.longest < 1000, `a frame took ${Math.round(frames.longest)} ms`);
    const shown = Number((await p.locator('#event-rate').textContent()).replace(/[^0-9]/g, ''));
    assert.ok(shown > 0, 'the page counts the events it handles');
    await p.screenshot({ path: path.join(out, 'overview-100-queues.png') });
    await p.close();
  });

  await scenario('screenshots of the other views and at phone width', async () => {
    await page.goto(base + '/ui#/workers');
    await page.locator('#worker-list .badge.worker-live').first().waitFor();
    await shot('workers');
    await page.goto(base + '/ui#/jobs');
    await page.locator('#job-list table').waitFor();
    await shot('jobs');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(base + '/ui#/');
    await page.locator('section.queue[data-queue="ui-live"]').waitFor();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scrolling at phone width (page is ${width}px wide)`);
    await shot('overview-phone');
    await page.goto(`${base}/ui#/job/${liveId}`);
    await page.locator('h1 .badge', { hasText: 'completed' }).waitFor();
    await shot('job-phone');
  });
} catch (e) {
  results.push([false, 'setup']);
  console.log('not ok - setup\n  ' + String(e.stack || e));
  for (const c of children) console.log(`--- ${c.name} log (tail) ---\n${c.log.slice(-4000)}`);
} finally {
  if (context) await context.close().catch(() => {});
  cleanup();
}
const failed = results.filter(([ok]) => !ok).length;
console.log(`${results.length - failed} passed, ${failed} failed; screenshots in ${out}`);
process.exit(failed || results.length === 0 ? 1 : 0);
