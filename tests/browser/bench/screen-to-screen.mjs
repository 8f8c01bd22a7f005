// Screen-to-screen latency of the web UI (issue 16, item 5): Alice presses Enter in one
// Chromium page, Bob sees the text in another, and where the time between goes.
//
//   CHATAPP_SERVER_BIN=…/release/chatapp-server node bench/screen-to-screen.mjs [options]
//     --messages N    measured messages (default 200), after 10 not measured
//     --interval MS   one message every MS ms (default 100), so that none queue
//     --warmup N      messages sent first and not measured (default 10)
//     --dist DIR      serve the web UI from DIR (e.g. ../../web-ui/dist) instead of the
//                     copy embedded in the server binary: measures a UI change without
//                     rebuilding the server
//     --trace FILE    a Chromium performance trace over the run (chrome://tracing, or
//                     DevTools' Performance panel); prints the CPU time of Bob's renderer main
//                     thread per message, by kind of work (thread time: holds on a busy machine)
//     --profile FILE  a JavaScript CPU profile of Bob's page over the run (.cpuprofile, for
//                     DevTools); the functions with the most self time are printed
//     --json FILE     the raw samples
//
// One headless Chromium, one browser context (own renderer process, own visible page) per
// person. Init scripts in both pages take timestamps on `performance.timeOrigin +
// performance.now()`:
//   key    the Enter keydown in Alice's composer (capture listener on window)
//   send   Alice's WebSocket.prototype.send of the frame with that text
//   arr    the WebSocket `message` event with that text on Bob's socket (a listener added
//          when the socket is made, so it runs before the app's `onmessage`)
//   dom    the MutationObserver callback that first sees the text in Bob's timeline
//   done   a task posted on arrival: runs once the arrival's task (and what its microtasks
//          did after the render: scrolling, marking read) has finished
//   frame  the requestAnimationFrame callback after `dom` (the frame that shows it)
//   paint  a task posted from that rAF callback: runs once the frame's style, layout and
//          paint are done on the main thread (≈ handed to the compositor)
// The two renderer processes' clocks are compared with the driver's by round trips
// (offset of the round trip with the smallest time; its half is the uncertainty), and
// Bob's stamps are moved onto Alice's clock. The server's share is estimated from ping →
// pong round trips on Alice's socket (the same path through Chromium's network stack and
// the loopback, with almost no server work).
//
// Headless Chromium runs rAF at 60 Hz in both pages (printed: "frames"), but a frame asked
// for by an idle page begins 1–3 ms (p50) after the task that asked, not at the next tick of a
// display: on a real screen, add the wait for vsync (0–16.7 ms, 8 on average) to "frame".

import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { launchBrowser, startServer } from '../harness.mjs';
import { openConversation, register, startDirect, waitForText } from '../ui.mjs';

const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '200' },
    interval: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '10' },
    dist: { type: 'string' },
    trace: { type: 'string' },
    profile: { type: 'string' },
    json: { type: 'string' },
  },
});
const N = Number(opt.messages);
const INTERVAL = Number(opt.interval);
const WARMUP = Number(opt.warmup);

// ---- in the pages --------------------------------------------------------------------

function instrument() {
  const now = () => performance.timeOrigin + performance.now();
  const RE = /s2s#(\d+)#/g;
  const B = {
    key: {}, keyEnd: {}, send: {}, arr: {}, done: {}, ack: {}, dom: {}, echo: {}, frame: {}, paint: {},
    pings: [], pongs: [], longTasks: [], errors: [], sockets: [],
  };
  window.__s2s = B;
  const first = (map, id, t) => {
    if (!(id in map)) map[id] = t;
  };

  addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || !(e.target instanceof HTMLTextAreaElement)) return;
    const t = now();
    for (const m of e.target.value.matchAll(RE)) first(B.key, m[1], t);
  }, true);
  // after the app's handler and the microtasks it queued (Svelte's flush of Alice's own bubble)
  addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    const t = now();
    for (const id of Object.keys(B.key)) first(B.keyEnd, id, t);
  });

  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const t = now();
    if (typeof data === 'string') {
      if (data.includes('"ping"')) B.pings.push(t);
      else for (const m of data.matchAll(RE)) first(B.send, m[1], t);
    }
    return send.call(this, data);
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      B.sockets.push(this);
      this.addEventListener('message', (ev) => {
        const t = now();
        if (typeof ev.data !== 'string') return;
        if (ev.data.includes('"pong"')) {
          B.pongs.push(t);
          return;
        }
        const type = /"type":"(\w+)"/.exec(ev.data)?.[1];
        if (type === 'error') B.errors.push(ev.data.slice(0, 300));
        const map = type === 'ack' ? B.ack : type === 'message' ? B.arr : null;
        if (!map) return;
        const ids = [...ev.data.matchAll(RE)].map((m) => m[1]);
        for (const id of ids) first(map, id, t);
        if (map === B.arr) {
          const ch = new MessageChannel();
          ch.port1.onmessage = () => {
            const td = now();
            for (const id of ids) first(B.done, id, td);
          };
          ch.port2.postMessage(0);
        }
      });
    }
  };

  const seen = (node) => {
    const el = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement;
    if (!el?.closest?.('.timeline')) return null;
    if (el.closest('[data-seq]')) return B.dom;
    if (el.closest('[data-client-id]')) return B.echo;
    // a whole row (or more) added at once: decide per row below
    return 'rows';
  };
  new MutationObserver((records) => {
    const t = now();
    const fresh = [];
    const note = (map, text) => {
      for (const m of text.matchAll(RE)) {
        if (m[1] in map) continue;
        map[m[1]] = t;
        if (map === B.dom) fresh.push(m[1]);
      }
    };
    for (const r of records) {
      const nodes = r.type === 'characterData' ? [r.target] : r.addedNodes;
      for (const n of nodes) {
        const where = seen(n);
        if (where === null) continue;
        if (where !== 'rows') {
          note(where, n.textContent ?? '');
          continue;
        }
        for (const row of n.querySelectorAll?.('.msg-row') ?? []) note(row.hasAttribute('data-seq') ? B.dom : B.echo, row.textContent ?? '');
      }
    }
    if (fresh.length > 0) {
      requestAnimationFrame(() => {
        const tf = now();
        for (const id of fresh) B.frame[id] = tf;
        const ch = new MessageChannel();
        ch.port1.onmessage = () => {
          const tp = now();
          for (const id of fresh) B.paint[id] = tp;
        };
        ch.port2.postMessage(0);
      });
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });

  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) B.longTasks.push([performance.timeOrigin + e.startTime, e.duration]);
    }).observe({ type: 'longtask' });
  } catch {
    // no long task timing
  }
}

// ---- in the driver ---------------------------------------------------------------------

const nodeNow = () => performance.timeOrigin + performance.now();

/** The page's clock minus the driver's, from the round trip with the smallest time. */
async function clockOffset(page, rounds = 40) {
  let best = { rtt: Infinity, offset: 0 };
  for (let i = 0; i < rounds; i++) {
    const t0 = nodeNow();
    const tp = await page.evaluate(() => performance.timeOrigin + performance.now());
    const t1 = nodeNow();
    if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: tp - (t0 + t1) / 2 };
  }
  return best;
}

/** Frame rate and visibility: is rAF throttled in this page? */
function frameRate(page) {
  return page.evaluate(() => new Promise((done) => {
    const ts = [];
    const step = (t) => {
      ts.push(t);
      if (ts.length < 61) requestAnimationFrame(step);
      else {
        const d = ts.slice(1).map((t, i) => t - ts[i]).sort((a, b) => a - b);
        done({ medianMs: d[d.length >> 1], maxMs: d.at(-1), visibility: document.visibilityState, focus: document.hasFocus() });
      }
    };
    requestAnimationFrame(step);
  }));
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2', '.webmanifest': 'application/manifest+json' };

/** Serves the UI's files from `dir` (the API and WebSocket still go to the server). */
async function serveDist(context, base, dir) {
  await context.route((url) => url.origin === new URL(base).origin && !url.pathname.startsWith('/api'), async (route) => {
    const path = new URL(route.request().url()).pathname;
    let file = join(dir, path);
    let body = await readFile(file).catch(() => null);
    if (body === null || path === '/') {
      file = join(dir, 'index.html');
      body = await readFile(file);
    }
    const headers = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' };
    if (file.endsWith('index.html')) {
      headers['content-security-policy'] = "default-src 'self'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
    }
    await route.fulfill({ status: 200, headers, body });
  });
}

function stats(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const p = (q) => s[Math.min(s.length - 1, Math.floor((q / 100) * s.length))];
  return { n: s.length, p50: p(50), p95: p(95), p99: p(99), max: s.at(-1) };
}

/** Bob's renderer main thread in the trace: thread (CPU) time per message, each trace
 *  event's own time (its children's taken off) summed by kind of work. */
function mainThreadCpu(file, messages) {
  const events = JSON.parse(readFileSync(file, 'utf8')).traceEvents;
  const pid = events.find((e) => e.name === 's2s-bob')?.pid;
  const tid = events.find((e) => e.pid === pid && e.name === 'thread_name' && e.args?.name === 'CrRendererMain')?.tid;
  const xs = events.filter((e) => e.pid === pid && e.tid === tid && e.ph === 'X' && e.tdur !== undefined).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const KIND = {
    FunctionCall: 'JavaScript', 'v8.run': 'JavaScript', RunMicrotasks: 'JavaScript', EvaluateScript: 'JavaScript', 'v8.callFunction': 'JavaScript',
    TimerFire: 'JavaScript', FireAnimationFrame: 'JavaScript', EventDispatch: 'JavaScript', MinorGC: 'GC', MajorGC: 'GC',
    UpdateLayoutTree: 'style', Layout: 'layout', PrePaint: 'paint', Paint: 'paint', Layerize: 'paint', Commit: 'commit', UpdateLayer: 'paint',
    HitTest: 'hit test', 'Receive mojo message': 'IPC', 'SimpleWatcher::OnHandleReady': 'IPC',
  };
  const own = new Map();
  let all = 0;
  const stack = [];
  for (const e of xs) {
    while (stack.length && stack.at(-1).ts + stack.at(-1).dur <= e.ts) stack.pop();
    const parent = stack.at(-1);
    e.own = e.tdur;
    // a style recalc or layout inside script: forced by a read of layout (scrollHeight …)
    e.forced = (e.name === 'Layout' || e.name === 'UpdateLayoutTree') && stack.some((a) => KIND[a.name] === 'JavaScript');
    if (parent) parent.own -= e.tdur;
    else all += e.tdur;
    stack.push(e);
  }
  let forced = 0;
  for (const e of xs) {
    const kind = KIND[e.name] ?? (e.name.startsWith('V8.GC') ? 'GC' : 'other (scheduler, IPC, V8 internals)');
    own.set(kind, (own.get(kind) ?? 0) + Math.max(0, e.own));
    if (e.forced) forced += Math.max(0, e.own);
  }
  const per = (us) => (us / 1000 / messages).toFixed(2);
  const lines = [`Bob's renderer main thread: ${per(all)} ms CPU per message (${messages} messages over the trace)`, '', '| work | ms CPU per message |', '|---|---|'];
  for (const [k, v] of [...own].sort((a, b) => b[1] - a[1])) lines.push(`| ${k} | ${per(v)} |`);
  lines.push(`| (style and layout forced by script, included above) | ${per(forced)} |`);
  return lines.join('\n');
}

/** The functions with the most self time in a CPU profile (idle and GC apart). */
function topSelfTime(profile, n) {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const f = node.callFrame;
    const file = f.url.split('/').pop();
    const key = `${f.functionName || '(anonymous)'} ${file}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + (dt[i + 1] ?? 0) / 1000);
  }
  const busy = [...self].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(program)'));
  const total = busy.reduce((s, [, v]) => s + v, 0);
  const lines = [`Bob's busiest functions (self time, ${total.toFixed(0)} ms of JS, GC and native in all):`, '', '| ms | function |', '|---|---|'];
  for (const [k, v] of busy.sort((a, b) => b[1] - a[1]).slice(0, n)) lines.push(`| ${v.toFixed(1)} | \`${k}\` |`);
  return lines.join('\n');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// No rate limits: the bench sends a message and a ping per interval (the default is 20 frames/s).
const server = await startServer(['--auth-rate-per-address', '0', '--send-rate-per-user', '0', '--ws-frames-per-second', '10000', '--ws-frames-burst', '10000']);
// A page fulfilled by Playwright has no address space: Chromium's local network access
// checks would then block its WebSocket to the loopback server.
const browser = await launchBrowser(opt.dist ? ['--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets'] : []);
let exitCode = 0;
try {
  const prepare = async (context) => {
    await context.addInitScript(instrument);
    if (opt.dist) await serveDist(context, server.base, resolve(opt.dist));
  };
  const alice = await register(browser, server.base, 'alice', { displayName: 'Alice', prepare });
  const bob = await register(browser, server.base, 'bob', { displayName: 'Bob', prepare });
  await startDirect(alice.page, 'bob');
  await alice.page.fill('#composer-input', 'hello Bob');
  await alice.page.press('#composer-input', 'Enter');
  await openConversation(bob.page, 'Alice');
  await waitForText(bob.page, 'hello Bob');

  const rate = { alice: await frameRate(alice.page), bob: await frameRate(bob.page) };
  const before = { alice: await clockOffset(alice.page), bob: await clockOffset(bob.page) };
  if (opt.trace) {
    await browser.startTracing(bob.page, { path: opt.trace, screenshots: false });
    await bob.page.evaluate(() => performance.mark('s2s-bob'));
  }
  let cdp;
  if (opt.profile) {
    cdp = await bob.context.newCDPSession(bob.page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
    await cdp.send('Profiler.start');
  }

  const driver = { fill: {}, press: {}, pressed: {} };
  const total = WARMUP + N;
  const start = nodeNow();
  for (let i = 0; i < total; i++) {
    const slot = start + i * INTERVAL;
    const wait = slot - nodeNow();
    if (wait > 0) await sleep(wait);
    const text = `s2s#${i}# Alice says hello ${Math.random().toString(36).slice(2, 8)}`;
    driver.fill[i] = nodeNow();
    await alice.page.fill('#composer-input', text);
    driver.press[i] = nodeNow();
    await alice.page.keyboard.press('Enter');
    driver.pressed[i] = nodeNow();
    // a ping half-way to the next message: Chromium's network stack and the loopback, both ways
    const half = slot + INTERVAL / 2 - nodeNow();
    if (half > 0) await sleep(half);
    await alice.page.evaluate(() => window.__s2s.sockets.at(-1)?.send('{"type":"ping"}'));
  }
  const last = String(total - 1);
  await bob.page.waitForFunction((id) => id in window.__s2s.paint, last, { timeout: 15_000 });
  if (opt.trace) await browser.stopTracing();
  const profile = cdp ? (await cdp.send('Profiler.stop')).profile : null;

  const after = { alice: await clockOffset(alice.page), bob: await clockOffset(bob.page) };
  const A = await alice.page.evaluate(() => { const { sockets, ...rest } = window.__s2s; return rest; });
  const B = await bob.page.evaluate(() => { const { sockets, ...rest } = window.__s2s; return rest; });
  const domCount = await bob.page.locator('.timeline .msg-row[data-seq]').count();

  // Bob's stamps onto Alice's clock (the mean of the offsets before and after).
  const offA = (before.alice.offset + after.alice.offset) / 2;
  const offB = (before.bob.offset + after.bob.offset) / 2;
  const bobToAlice = offB - offA;
  const onA = (t) => (t === undefined ? NaN : t - bobToAlice);

  const rows = [];
  for (let i = WARMUP; i < total; i++) {
    const id = String(i);
    const key = A.key[id];
    rows.push({
      i,
      key,
      driverPressToKey: key - offA - driver.press[i],
      fillToKey: key - offA - driver.fill[i],
      keyToSend: A.send[id] - key,
      keyToEnd: A.keyEnd[id] - key,
      keyToEcho: A.echo[id] - key,
      sendToAck: A.ack[id] - A.send[id],
      sendToArr: onA(B.arr[id]) - A.send[id],
      arrToDom: B.dom[id] - B.arr[id],
      domToDone: B.done[id] - B.dom[id],
      doneToFrame: B.frame[id] - B.done[id],
      domToFrame: B.frame[id] - B.dom[id],
      frameToPaint: B.paint[id] - B.frame[id],
      keyToDom: onA(B.dom[id]) - key,
      keyToFrame: onA(B.frame[id]) - key,
      keyToPaint: onA(B.paint[id]) - key,
    });
  }
  const pingRtt = [];
  for (const t of A.pings) {
    const pong = A.pongs.find((p) => p >= t);
    if (pong !== undefined && pong - t < INTERVAL) pingRtt.push(pong - t);
  }

  const col = (k) => stats(rows.map((r) => r[k]));
  const lines = [
    ['key → send (Alice: keydown handler, store, outbox)', 'keyToSend'],
    ['send → arrival at Bob (network stack, loopback, server)', 'sendToArr'],
    ['arrival → in Bob\'s DOM (Bob: parse, store, Svelte)', 'arrToDom'],
    ['DOM → next frame (rAF callback)', 'domToFrame'],
    ['  of which: DOM → end of the arrival\'s task (scroll, mark read)', 'domToDone'],
    ['  of which: end of task → frame (waiting for the frame to begin)', 'doneToFrame'],
    ['frame → painted (task after the frame)', 'frameToPaint'],
    ['**key → DOM**', 'keyToDom'],
    ['**key → frame**', 'keyToFrame'],
    ['**key → painted**', 'keyToPaint'],
    ['*Alice: send → ack (round trip through the server)*', 'sendToAck'],
    ['*Alice: key → own bubble in DOM*', 'keyToEcho'],
    ['*Alice: key → end of keydown dispatch*', 'keyToEnd'],
    ['*driver: keyboard.press() call → keydown*', 'driverPressToKey'],
    ['*driver: fill() call → keydown (what the test counts before Enter)*', 'fillToKey'],
  ];
  const f = (x) => (x === undefined ? '–' : x.toFixed(1));
  const out = [];
  out.push(`# screen to screen: ${N} messages (after ${WARMUP} not measured), one every ${INTERVAL} ms${opt.dist ? `, UI from ${opt.dist}` : ''}`);
  out.push('');
  out.push('| segment (ms) | n | p50 | p95 | p99 | max |');
  out.push('|---|---|---|---|---|---|');
  for (const [name, k] of lines) {
    const s = col(k);
    out.push(`| ${name} | ${s.n} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${f(s.max)} |`);
  }
  const ps = stats(pingRtt);
  out.push(`| *Alice: ping → pong (network stack and loopback both ways, no server work)* | ${ps.n} | ${f(ps.p50)} | ${f(ps.p95)} | ${f(ps.p99)} | ${f(ps.max)} |`);
  out.push('');
  const sa = col('sendToArr');
  out.push(`server's share ≈ send→arrival − ping RTT: p50 ${f(sa.p50 - ps.p50)} ms`);
  out.push(`clocks: Bob − Alice ${bobToAlice.toFixed(2)} ms (before ${(before.bob.offset - before.alice.offset).toFixed(2)}, after ${(after.bob.offset - after.alice.offset).toFixed(2)}; ` +
    `± ${((before.alice.rtt + before.bob.rtt) / 2).toFixed(2)} ms from the round trips)`);
  out.push(`frames: Alice ${rate.alice.medianMs.toFixed(1)} ms (max ${rate.alice.maxMs.toFixed(1)}, ${rate.alice.visibility}), ` +
    `Bob ${rate.bob.medianMs.toFixed(1)} ms (max ${rate.bob.maxMs.toFixed(1)}, ${rate.bob.visibility})${rate.bob.medianMs > 20 ? ' — rAF THROTTLED' : ''}`);
  out.push(`long tasks (> 50 ms) during the run: Alice ${A.longTasks.length}, Bob ${B.longTasks.length}; Bob's timeline holds ${domCount} messages`);
  if (A.errors.length) {
    out.push(`server errors to Alice: ${A.errors.length}, e.g. ${A.errors[0]}`);
    exitCode = 1;
  }
  const missing = rows.filter((r) => !Number.isFinite(r.keyToPaint)).length;
  if (missing) {
    out.push(`MISSING: ${missing} messages without every stamp`);
    exitCode = 1;
  }
  console.log(out.join('\n'));
  if (opt.trace) {
    console.log('');
    console.log(mainThreadCpu(opt.trace, total));
  }
  if (profile) {
    writeFileSync(opt.profile, JSON.stringify(profile));
    console.log('');
    console.log(topSelfTime(profile, 15));
  }
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ rows, pingRtt, rate, before, after, driver, A, B }, null, 1));
  for (const p of [alice, bob]) if (p.problems.length) console.log(`page problems (${p.username}): ${p.problems.join('; ')}`);
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  await browser.close();
  const { code } = await server.stop();
  if (code !== 0) exitCode = 1;
}
process.exit(exitCode);
