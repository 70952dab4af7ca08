// dualsync dashboard, on-call panel: what the alerts in Azure watch
// (docs/deploy.md, "On call"), without opening a log: failed items and
// conflicts (recent runs and today's real-time sync), the breaker and the
// last failover and failback, each outbox's oldest change, Queue and Table
// Storage, and the last nightly run. Separate from app.js on purpose: it
// reads only the API, and renders only into #oncall.
'use strict';

(() => {
  const STALE_SECONDS = 300;    // OUTBOX_STALE_AFTER's default: older is an alert in Azure
  const EVERY_SECONDS = 15;     // the panel's own refresh while the page is visible
  const code = new URLSearchParams(location.search).get('code') || '';

  const node = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  async function get(path) {
    const headers = { Accept: 'application/json' };
    if (code) headers['x-functions-key'] = code;
    try {
      const res = await fetch(path, { headers, cache: 'no-store', credentials: 'same-origin' });
      const text = await res.text();
      let body = null;
      try { body = text ? JSON.parse(text) : null; } catch { body = null; }
      return { status: res.status, body };
    } catch (err) {
      return { status: 0, body: null, error: err.message };
    }
  }

  const why = (r) => (r.body && (r.body.detail || r.body.title)) || r.error || ('HTTP ' + r.status);
  const when = (iso) => {
    if (!iso) return 'never (since this instance started)';
    // The format of every other time on the page (app.js).
    return window.dualsyncTime ? window.dualsyncTime.text(iso) : iso;
  };
  const age = (s) => (s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
  const today = () => 'realtime-' + new Date().toISOString().slice(0, 10).replaceAll('-', '');

  // One card: a title, a level (good, warn, bad) and label/value rows.
  function card(title, level, rows, label) {
    const a = node('article', 'db' + (level === 'bad' ? ' down' : ''));
    a.setAttribute('aria-label', label || title);
    a.dataset.level = level;
    const h = node('h3', '', title);
    h.append(' ', node('span', 'badge ' + ({ good: 'h-ok', warn: 'h-degraded', bad: 'h-down' })[level], level === 'good' ? 'ok' : level === 'warn' ? 'check' : 'act'));
    a.append(h);
    const dl = node('dl');
    for (const [k, v, cls, href] of rows) {
      dl.append(node('dt', '', k));
      const dd = node('dd', cls || '');
      if (href) {
        const link = node('a', '', v);
        link.href = href;
        dd.append(link);
      } else {
        dd.textContent = v;
      }
      dl.append(dd);
    }
    a.append(dl);
    return a;
  }

  // Items of one status in today's real-time partition: at most 100 counted.
  async function realtimeCount(status) {
    const r = await get(`product-sync/${today()}/results?status=${status}&limit=100`);
    if (r.status !== 200 || !r.body) return { n: null, more: false };
    return { n: (r.body.items || []).length, more: !!r.body.continuation };
  }

  async function load() {
    const box = document.getElementById('oncall');
    if (!box) return;
    const [health, runs, rtFailed, rtConflict, rtWaiting] = await Promise.all([
      get('health/details'), get('product-sync?limit=20'), realtimeCount('failed'), realtimeCount('conflict'), realtimeCount('waiting'),
    ]);
    const cards = [];

    // Failed items and conflicts: the listed runs' counts and today's real-time outcomes.
    const list = Array.isArray(runs.body) ? runs.body : [];
    let failed = 0, conflicts = 0, worstRun = null;
    for (const r of list) {
      const c = (r.customStatus && r.customStatus.counts) || {};
      failed += c.failed || 0;
      conflicts += c.conflict || 0;
      if (!worstRun && ((c.failed || 0) + (c.conflict || 0) > 0 || r.runtimeStatus === 'Failed')) worstRun = r;
    }
    const rt = (x) => (x.n === null ? '?' : x.n + (x.more ? '+' : ''));
    if (runs.status === 200 || rtFailed.n !== null) {
      // Waiting items are not failures: the outbox relay sends them again.
      const level = failed + (rtFailed.n || 0) > 0 ? 'bad' : conflicts + (rtConflict.n || 0) + (rtWaiting.n || 0) > 0 ? 'warn' : 'good';
      const rows = [
        [`Failed, last ${list.length} runs`, String(failed), failed ? 'bad' : ''],
        [`Conflicts, last ${list.length} runs`, String(conflicts), conflicts ? 'warn' : ''],
        ['Failed, real-time today', rt(rtFailed), rtFailed.n ? 'bad' : '', rtFailed.n ? '#run=' + today() : ''],
        ['Conflicts, real-time today', rt(rtConflict), rtConflict.n ? 'warn' : '', rtConflict.n ? '#run=' + today() + '&status=conflict' : ''],
      ];
      if (rtWaiting.n) rows.push(['Waiting for the relay, real-time today', rt(rtWaiting), 'warn', '#run=' + today() + '&status=waiting']);
      if (worstRun) rows.push(['Newest run to look at', `${worstRun.customStatus.entity} · ${when(worstRun.createdTime)}`, '', '#run=' + worstRun.instanceId]);
      cards.push(card('Sync outcomes', level, rows, 'failed items and conflicts'));
    } else {
      cards.push(card('Sync outcomes', 'bad', [['Runs', 'unavailable: ' + why(runs), 'bad']], 'failed items and conflicts'));
    }

    const h = health.body && typeof health.body === 'object' ? health.body : null;
    if (!h || !h.databases) {
      const text = health.status === 401 || health.status === 404
        ? 'needs a function key: open the page with ?code=KEY' : 'unavailable: ' + why(health);
      cards.push(card('Breaker and outbox', 'warn', [['Detail', text, 'warn']], 'breaker'));
    } else {
      // The breaker, and when this instance last failed over and back.
      const open = h.breaker && h.breaker !== 'closed';
      cards.push(card('Breaker', open ? 'bad' : 'good', [
        ['State', `${h.breaker} · serving ${h.serving}`, open ? 'bad' : ''],
        ['Last failover', when(h.lastFailover)],
        ['Last failback', when(h.lastFailback)],
      ], 'breaker'));

      // Each outbox: depth and the oldest change's age.
      const rows = [];
      let level = 'good';
      for (const name of ['primary', 'fallback']) {
        const d = h.databases[name];
        if (!d) continue;
        const s = d.outboxOldestAgeSeconds || 0;
        const stale = s >= STALE_SECONDS;
        if (stale) level = 'bad';
        else if (d.outboxDepth > 0 && level === 'good') level = 'warn';
        // A depth the database could not tell (null) is unknown, never 0.
        const depth = typeof d.outboxDepth === 'number' ? d.outboxDepth : null;
        if (depth === null && level === 'good') level = 'warn';
        rows.push([`${name}`, depth === null ? `depth unknown${d.reachable ? '' : ': not reachable'}`
          : `${depth} waiting` + (depth ? `, oldest ${age(s)}` : '') + (d.reachable ? '' : ' · not reachable'),
          stale || !d.reachable ? 'bad' : depth === null || depth ? 'warn' : '']);
      }
      cards.push(card('Outbox', level, rows, 'outbox age'));

      // Queue and Table Storage.
      const st = h.storage || {};
      const srows = Object.keys(st).sort().map((k) => [k === 'queue' ? 'Queue Storage' : k === 'table' ? 'Table Storage' : k,
        st[k].status === 'ok' ? 'ok' : st[k].reason || 'down', st[k].status === 'ok' ? 'good' : 'bad']);
      if (srows.length) cards.push(card('Storage', srows.some((r) => r[2] === 'bad') ? 'bad' : 'good', srows, 'storage'));

      // The last nightly run.
      const n = h.lastNightlyRun;
      if (n) {
        const c = n.counts || {};
        const bad = n.status === 'Failed' || (c.failed || 0) > 0;
        const warn = (c.conflict || 0) > 0 || !n.finishedTime;
        cards.push(card('Last nightly run', bad ? 'bad' : warn ? 'warn' : 'good', [
          ['Run', `${n.entity} · ${n.status}`, bad ? 'bad' : '', '#run=' + n.id],
          ['Finished', n.finishedTime ? when(n.finishedTime) : 'not yet'],
          ['Items', `${n.total} · failed ${c.failed || 0} · conflicts ${c.conflict || 0}`],
        ], 'last nightly run'));
      } else {
        cards.push(card('Last nightly run', 'warn', [['Run', 'none yet', 'muted']], 'last nightly run'));
      }
    }
    box.replaceChildren(...cards);
    const worst = cards.some((c) => c.dataset.level === 'bad') ? 'act' : cards.some((c) => c.dataset.level === 'warn') ? 'check' : 'ok';
    const badge = document.getElementById('oncall-status');
    if (badge) {
      badge.textContent = worst;
      badge.className = 'badge ' + (worst === 'act' ? 'h-down' : worst === 'check' ? 'h-degraded' : 'h-ok');
    }
  }

  // Refresh with the page (app.js rewrites #refresh-state after each of its
  // refreshes) and on its own every EVERY_SECONDS while the page is visible:
  // an outage must show with no run active and nobody pressing Refresh.
  // A hidden tab does not poll; it refreshes as soon as it is shown again.
  let loading = false, again = false, lastAt = 0, timer = 0;
  const pad = (n) => String(n).padStart(2, '0');
  async function refresh() {
    if (loading) { again = true; return; }
    loading = true;
    try { await load(); } finally { loading = false; }
    lastAt = Date.now();
    const d = new Date(lastAt);
    const note = document.getElementById('oncall-refresh');
    if (note) note.textContent = `Refreshes every ${EVERY_SECONDS} s while this page is visible · last ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (again) { again = false; refresh(); return; }
    schedule();
  }
  function schedule() {
    clearTimeout(timer);
    if (!document.hidden) timer = setTimeout(refresh, EVERY_SECONDS * 1000);
  }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) clearTimeout(timer);
    else if (Date.now() - lastAt >= EVERY_SECONDS * 1000) refresh();
    else schedule();
  });
  const watched = document.getElementById('refresh-state');
  if (watched) new MutationObserver(() => refresh()).observe(watched, { childList: true, characterData: true, subtree: true });
  refresh();
})();
