// The shardcast operator dashboard: polls GET <prefix>/api/dashboard every second, keeps the last
// five minutes in memory and draws them as SVG charts with axes, tick labels and units.
// No dependencies, no build step. The key (API or dashboard key) is entered in the page,
// kept in sessionStorage and sent as `Authorization: Bearer`, never in a URL.
'use strict';

(() => {
  const WINDOW_MS = 5 * 60 * 1000;
  const POLL_MS = 1000;
  const KEY = 'shardcast-dashboard-key';
  const SVG = 'http://www.w3.org/2000/svg';
  const W = 480, H = 190, M = { l: 52, r: 12, t: 28, b: 26 };
  const mode = document.body.dataset.mode;
  // The API beside this page: `/api` under whatever prefix the endpoints are mounted at
  // (the page is `<prefix>/dashboard`, with or without a trailing slash).
  const API = location.pathname.replace(/\/dashboard\/?$/, '') + '/api';
  const $ = (id) => document.getElementById(id);

  const history = [];
  let prev = null;
  let timer = null;
  let access = null;

  const key = () => sessionStorage.getItem(KEY);
  const auth = () => (key() ? { Authorization: 'Bearer ' + key() } : {});

  function start() {
    $('key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      sessionStorage.setItem(KEY, $('key').value.trim());
      $('key').value = '';
      begin();
    });
    $('forget-key').addEventListener('click', () => {
      sessionStorage.removeItem(KEY);
      location.reload();
    });
    $('publish-form').addEventListener('submit', publish);
    $('lookup-form').addEventListener('submit', lookup);
    $('disconnect').addEventListener('click', disconnect);
    if (mode === 'protected' && !key()) return askKey('');
    begin();
  }

  function askKey(note) {
    $('key-form').hidden = false;
    $('key-note').textContent = note;
    $('status').textContent = 'Enter the API key or the dashboard key.';
    $('key').focus();
  }

  function begin() {
    clearTimeout(timer);
    history.length = 0;
    prev = null;
    poll();
  }

  async function poll() {
    try {
      const res = await fetch(API + '/dashboard', { headers: auth(), cache: 'no-store' });
      if (res.status === 401) {
        sessionStorage.removeItem(KEY);
        return askKey('key refused');
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      update(await res.json(), performance.now());
      $('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      $('status').textContent = 'unreachable: ' + e.message;
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function update(doc, now) {
    access = doc.access;
    $('main').hidden = false;
    $('key-form').hidden = access === 'full';
    $('key-note').textContent = key() && access !== 'full' ? 'key refused' : '';
    $('actions').hidden = access !== 'full';
    showServer(doc);
    sample(doc, now);
    showCards(doc);
    drawCharts(now);
    showShards(doc.shards);
    showRooms(doc.rooms);
  }

  // ---- numbers ------------------------------------------------------------------------

  function trim(v) {
    return String(Number(v.toPrecision(3)));
  }

  function compact(v) {
    const a = Math.abs(v);
    if (a >= 1e9) return trim(v / 1e9) + 'G';
    if (a >= 1e6) return trim(v / 1e6) + 'M';
    if (a >= 1e3) return trim(v / 1e3) + 'k';
    return trim(v);
  }

  function duration(ms) {
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return `${d}d ${h}h ${m}m`;
    if (h) return `${h}h ${m}m ${s}s`;
    return m ? `${m}m ${s}s` : `${s}s`;
  }

  // The q quantile of non-cumulative bucket counts, interpolated inside its bucket (as
  // HistogramSnapshot::quantile_us does), in milliseconds; null without samples.
  function quantile(counts, bounds, q) {
    const total = counts.reduce((a, b) => a + b, 0);
    if (total <= 0) return null;
    const rank = Math.max(1, q * total);
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i];
      if (n <= 0 || seen + n < rank) { seen += Math.max(0, n); continue; }
      if (i >= bounds.length) return bounds[bounds.length - 1] / 1000;
      const lower = i === 0 ? 0 : bounds[i - 1];
      return (lower + ((rank - seen) / n) * (bounds[i] - lower)) / 1000;
    }
    return null;
  }

  // ---- history ------------------------------------------------------------------------

  function sample(doc, now) {
    const t = doc.totals;
    const point = { t: now, connections: t.connections };
    if (prev) {
      const p = prev.doc.totals;
      const dt = (now - prev.t) / 1000;
      const rate = (a, b) => Math.max(0, (a - b) / dt);
      const queues = (x) => x.inbox_dropped + x.redis_publish_dropped + x.inbound_dropped;
      point.deliveries = rate(t.deliveries, p.deliveries);
      point.inbound = rate(t.frames_in, p.frames_in);
      point.backpressure = rate(t.backpressure_dropped, p.backpressure_dropped);
      point.queues = rate(queues(t), queues(p));
      const before = prev.doc.latency.delivery;
      const delta = doc.latency.delivery.map((n, i) => n - before[i]);
      point.p50 = quantile(delta, doc.latency.bounds_us, 0.5);
      point.p99 = quantile(delta, doc.latency.bounds_us, 0.99);
    }
    history.push(point);
    while (history.length && history[0].t < now - WINDOW_MS) history.shift();
    prev = { t: now, doc };
  }

  // ---- text ---------------------------------------------------------------------------

  function showServer(doc) {
    const s = doc.server;
    $('version').textContent = `${s.version} (commit ${s.commit}, built ${s.build_date})`;
    $('server-id').textContent = s.server_id;
    $('uptime').textContent = duration(s.uptime_ms);
    $('shard-count').textContent = s.shards;
    $('rss').textContent = s.rss_bytes == null ? 'n/a' : trim(s.rss_bytes / 1048576) + ' MiB';
    $('access').textContent = doc.access === 'full' ? 'full' : 'aggregate only';
    const redis = $('redis');
    if (!doc.redis) {
      redis.textContent = 'not configured (single node)';
      return;
    }
    redis.replaceChildren(...doc.redis.links.map((l) => {
      const span = document.createElement('span');
      span.className = 'link-' + l.state;
      span.textContent = `${l.name} ${l.state} `;
      return span;
    }), document.createTextNode(
      `· queued ${doc.redis.queued} · reconnects ${doc.redis.reconnects}`));
  }

  function showCards(doc) {
    const last = history[history.length - 1];
    const rate = (v) => (v == null ? '–' : compact(v));
    $('v-connections').textContent = doc.totals.connections.toLocaleString();
    $('v-authenticated').textContent = doc.totals.authenticated.toLocaleString();
    $('v-rooms').textContent = doc.rooms.distinct.toLocaleString();
    $('v-deliveries').textContent = rate(last.deliveries);
    $('v-inbound').textContent = rate(last.inbound);
    const drops = last.backpressure == null ? null : last.backpressure + last.queues;
    $('v-drops').textContent = rate(drops);
  }

  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    return tr;
  }

  function showShards(shards) {
    $('shards').tBodies[0].replaceChildren(...shards.map((s) => row([
      s.shard, s.connections, s.authenticated, s.rooms, s.deliveries.toLocaleString(),
      s.frames_in.toLocaleString(), s.dropped.toLocaleString(), s.inbox_depth ?? '–',
    ])));
  }

  function showRooms(rooms) {
    const body = $('top-rooms').tBodies[0];
    if (!rooms.top) {
      $('rooms-note').textContent = 'Room names are shown with a key.';
      body.replaceChildren();
      return;
    }
    $('rooms-note').textContent = `${rooms.distinct} distinct rooms on this instance.`;
    body.replaceChildren(...rooms.top.map((r, i) => row([i + 1, r.name, r.members])));
  }

  // ---- charts -------------------------------------------------------------------------

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  function niceTicks(max) {
    const top = max > 0 ? max : 1;
    const raw = top / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
    const ticks = [];
    for (let v = 0; v < top + step / 2; v += step) ticks.push(v);
    if (ticks[ticks.length - 1] < top) ticks.push(ticks[ticks.length - 1] + step);
    return ticks;
  }

  function drawCharts(now) {
    chart('chart-connections', now, 'connections', [
      { name: 'open', get: (p) => p.connections },
    ]);
    chart('chart-deliveries', now, 'msg/s', [
      { name: 'deliveries', get: (p) => p.deliveries },
    ]);
    chart('chart-inbound', now, 'msg/s', [
      { name: 'inbound', get: (p) => p.inbound },
    ]);
    chart('chart-drops', now, 'msg/s', [
      { name: 'backpressure', get: (p) => p.backpressure },
      { name: 'full queues', get: (p) => p.queues },
    ]);
    chart('chart-latency', now, 'ms', [
      { name: 'p50', get: (p) => p.p50 },
      { name: 'p99', get: (p) => p.p99 },
    ]);
  }

  // The time span shown: from the first sample (at least 30 s) up to five minutes.
  function span(now) {
    const first = history.length ? history[0].t : now;
    return Math.min(WINDOW_MS, Math.max(30000, now - first));
  }

  function chart(id, now, unit, series) {
    const svg = $(id);
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const pw = W - M.l - M.r, ph = H - M.t - M.b;
    let max = 0;
    for (const s of series) {
      for (const p of history) {
        const v = s.get(p);
        if (v != null && v > max) max = v;
      }
    }
    svg.dataset.max = max;
    const ticks = niceTicks(max);
    const top = ticks[ticks.length - 1];
    const width = span(now);
    const x = (t) => M.l + ((t - (now - width)) / width) * pw;
    const y = (v) => M.t + ph - (v / top) * ph;
    const lines = series.map((s, i) => line(s, i, x, y));
    const empty = lines.every((l) => l.dataset.points === '0');
    svg.replaceChildren(
      yAxis(ticks, y, pw, unit),
      xAxis(x, now, width, ph),
      ...lines,
      legend(series),
      ...(empty ? [el('text', { class: 'empty', x: M.l + pw / 2, y: M.t + ph / 2,
        'text-anchor': 'middle' }, 'no samples yet')] : []),
    );
  }

  function yAxis(ticks, y, pw, unit) {
    const g = el('g', { class: 'axis axis-y' });
    for (const v of ticks) {
      g.append(el('line', { class: 'grid', x1: M.l, x2: M.l + pw, y1: y(v), y2: y(v) }));
      g.append(el('text', { class: 'tick-label', x: M.l - 6, y: y(v) + 4, 'text-anchor': 'end' },
        compact(v)));
    }
    g.append(el('line', { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
    g.append(el('text', { class: 'unit', x: 4, y: M.t - 12 }, unit));
    return g;
  }

  function xAxis(x, now, width, ph) {
    const g = el('g', { class: 'axis axis-x' });
    const base = M.t + ph;
    g.append(el('line', { x1: M.l, x2: W - M.r, y1: base, y2: base }));
    const step = [5, 10, 15, 30, 60].find((s) => width / 1000 / s <= 6) * 1000;
    for (let ago = Math.floor(width / step) * step; ago >= 0; ago -= step) {
      const px = x(now - ago);
      g.append(el('line', { x1: px, x2: px, y1: base, y2: base + 4 }));
      g.append(el('text', { class: 'tick-label', x: px, y: base + 16, 'text-anchor': 'middle' },
        ago === 0 ? 'now' : ago % 60000 === 0 ? `−${ago / 60000} min` : `−${ago / 1000} s`));
    }
    return g;
  }

  // One series as a path; a missing value lifts the pen. data-points counts the points.
  function line(s, i, x, y) {
    let d = '', n = 0, pen = false;
    for (const p of history) {
      const v = s.get(p);
      if (v == null) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      n++;
    }
    return el('path', { class: `series s${i}`, d: d || 'M0,0', 'data-series': s.name,
      'data-points': n });
  }

  function legend(series) {
    const g = el('g', { class: 'legend' });
    series.forEach((s, i) => {
      const lx = W - M.r - 100 * (series.length - i);
      g.append(el('rect', { class: `s${i}`, x: lx, y: 6, width: 10, height: 10 }));
      g.append(el('text', { x: lx + 14, y: 15 }, s.name));
    });
    return g;
  }

  // ---- actions ------------------------------------------------------------------------

  async function call(method, path, body) {
    const headers = { ...auth() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
    return { status: res.status, json };
  }

  async function publish(e) {
    e.preventDefault();
    const out = $('pub-result');
    let data;
    try {
      data = $('pub-data').value.trim() ? JSON.parse($('pub-data').value) : undefined;
    } catch (_) {
      out.textContent = 'data is not JSON';
      return;
    }
    const body = { type: 'room', target: $('pub-room').value, event: $('pub-event').value, data };
    const r = await call('POST', API + '/publish', JSON.stringify(body));
    out.textContent = r.status === 202 ? 'published (202)' : failure(r);
  }

  function failure(r) {
    const why = r.json && r.json.error ? r.json.error : '';
    if (r.status === 401) return '401: actions need the API key';
    return `${r.status} ${why}`;
  }

  async function lookup(e) {
    e.preventDefault();
    const id = $('client-id').value.trim();
    const out = $('client-result');
    const r = await call('GET', API + '/clients/' + encodeURIComponent(id));
    $('disconnect').disabled = r.status !== 200;
    if (r.status !== 200) {
      out.textContent = failure(r);
      return;
    }
    const c = r.json;
    out.textContent = `shard ${c.shard} · user ${c.user_id ?? '(none)'} · ` +
      `${c.authenticated ? 'authenticated' : 'not authenticated'} · ` +
      `rooms: ${c.rooms.join(', ') || '(none)'} · connected for ${duration(c.connected_for_ms)}`;
  }

  async function disconnect() {
    const id = $('client-id').value.trim();
    const r = await call('POST', API + '/clients/' + encodeURIComponent(id) + '/disconnect');
    $('client-result').textContent = r.status === 202 ? 'disconnected (202)' : failure(r);
    $('disconnect').disabled = true;
  }

  start();
})();
