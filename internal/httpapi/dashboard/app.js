// dualsync sync dashboard: no build step, no dependencies. The page is
// served at /api/dashboard, so relative URLs reach the API beside it.
'use strict';

(() => {
  const OUTCOMES = ['created', 'updated', 'deleted', 'unchanged', 'conflict', 'failed'];
  const ACTIVE = new Set(['Pending', 'Running']);
  const PAGE_SIZE = 50;
  const FAST = 2000;          // poll interval while runs move
  const SLOW = 10000;         // while an active run has not moved for a minute
  const SLOW_AFTER = 60e3;
  const GIVE_UP_AFTER = 15 * 60e3; // nothing moved for this long: stop polling

  // A function key in the page's URL goes with every call, as the header
  // the Functions host reads (a header stays out of access logs).
  const code = new URLSearchParams(location.search).get('code') || '';

  const $ = (sel) => document.querySelector(sel);
  const el = (tag, props, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'scope' || k === 'title') e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  };

  const state = {
    runs: [],
    selected: null,        // run id
    filter: 'failed',      // results status filter, '' = all
    tokens: [''],          // continuation token of each page seen, for Previous
    page: 0,
    next: '',
    healthPath: 'health/details', // falls back to health where the keyed route is missing
    timer: 0,
    signature: '',
    lastChange: Date.now(),
    loading: false,
    again: false,          // a refresh was asked for while one ran
    runsSeq: 0,            // drops a runs answer older than the newest asked for
  };

  async function api(path, opts = {}) {
    const headers = { Accept: 'application/json', ...(opts.headers || {}) };
    if (code) headers['x-functions-key'] = code;
    const res = await fetch(path, { ...opts, headers, cache: 'no-store', credentials: 'same-origin' });
    const text = await res.text();
    let body = null;
    if (text) {
      try { body = JSON.parse(text); } catch { body = text; }
    }
    return { status: res.status, ok: res.ok, body, headers: res.headers };
  }

  const problemText = (r) => {
    if (r.status === 401) return 'the API needs a function key: open this page with ?code=<key>';
    return (r.body && r.body.detail) || (r.body && r.body.title) || `HTTP ${r.status}`;
  };

  function say(text, kind) {
    const m = $('#message');
    m.textContent = text;
    m.className = 'message' + (kind ? ' ' + kind : '');
    m.hidden = !text;
  }

  // ---- formatting ----
  const pad = (n) => String(n).padStart(2, '0');
  function localTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function duration(ms) {
    if (!(ms >= 0)) return '';
    let s = Math.round(ms / 1000);
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (h) return `${h}h ${pad(m)}m`;
    if (m) return `${m}m ${pad(s)}s`;
    return `${s}s`;
  }
  const num = (n) => Number(n || 0).toLocaleString('en-US');
  const isActive = (r) => ACTIVE.has(r.runtimeStatus);
  function elapsed(r) {
    const start = Date.parse(r.createdTime);
    const end = isActive(r) ? Date.now() : Date.parse(r.lastUpdatedTime);
    return end - start;
  }
  function rate(r) {
    const secs = elapsed(r) / 1000;
    const done = r.customStatus.done || 0;
    return secs > 0 && done > 0 ? done / secs : 0;
  }
  const badge = (status) => el('span', { class: 'badge s-' + status.toLowerCase(), text: status });

  // ---- health ----
  async function loadHealth() {
    let r = await api(state.healthPath);
    if (r.status === 404 && state.healthPath !== 'health') {
      state.healthPath = 'health';
      r = await api(state.healthPath);
    }
    renderHealth(r);
    return r.body && r.body.status;
  }

  function renderHealth(r) {
    const box = $('#health');
    const h = r.body && typeof r.body === 'object' ? r.body : null;
    const st = $('#health-status');
    if (!h || !h.status) {
      st.textContent = 'unknown';
      st.className = 'badge s-failed';
      box.replaceChildren(el('p', { class: 'muted', text: 'Health unavailable: ' + problemText(r) }));
      return;
    }
    st.textContent = h.status;
    st.className = 'badge h-' + h.status;
    const dbs = h.databases || {};
    const cards = ['primary', 'fallback'].filter((n) => dbs[n]).map((name) => {
      const d = dbs[name];
      return el('article', { class: 'db' + (d.reachable ? '' : ' down'), 'aria-label': name + ' database' },
        el('h3', {}, name, h.serving === name ? el('span', { class: 'serving', text: 'serving' }) : null),
        el('dl', {},
          el('dt', { text: 'Driver' }), el('dd', { text: d.driver || '?' }),
          el('dt', { text: 'Reachable' }), el('dd', { class: d.reachable ? 'good' : 'bad', text: d.reachable ? 'yes' : 'no' }),
          el('dt', { text: 'Outbox depth' }), el('dd', { class: d.outboxDepth > 0 ? 'warn' : '', text: num(d.outboxDepth), title: 'changes not yet published to the sync queue' }),
          d.error ? [el('dt', { text: 'Error' }), el('dd', { class: 'bad', text: d.error })] : null));
    });
    const meta = el('dl', { class: 'breaker' },
      el('dt', { text: 'Serving' }), el('dd', { text: h.serving || '—' }),
      el('dt', { text: 'Breaker' }), el('dd', { class: h.breaker && h.breaker !== 'closed' ? 'warn' : '', text: h.breaker || '—' }));
    if (!cards.length) {
      box.replaceChildren(el('p', { class: 'muted', text: 'Detail (serving database, breaker, outbox depths) needs a function key: open the page with ?code=KEY.' }));
      return;
    }
    box.replaceChildren(...cards, meta);
  }

  // ---- runs ----
  async function loadRuns() {
    const seq = ++state.runsSeq;
    const r = await api('product-sync?limit=' + encodeURIComponent($('#runs-limit').value));
    if (seq !== state.runsSeq) return;
    if (!r.ok) throw new Error('runs: ' + problemText(r));
    state.runs = Array.isArray(r.body) ? r.body : [];
    renderRuns();
  }

  function progressCell(r) {
    const cs = r.customStatus;
    const total = cs.total || 0;
    const done = cs.done || 0;
    const pct = total > 0 ? Math.floor((done * 100) / total) : (r.runtimeStatus === 'Completed' ? 100 : 0);
    const bar = el('progress', { max: Math.max(total, 1), value: total > 0 ? done : (r.runtimeStatus === 'Completed' ? 1 : 0),
      'aria-label': `${num(done)} of ${num(total)} items done` });
    let text = `${num(done)} / ${num(total)}${cs.planned ? '' : '+'} · ${pct}%`;
    if (isActive(r)) {
      const rt = rate(r);
      if (!cs.planned) text += ' · planning';
      else if (rt > 0 && total > done) text += ' · ETA ' + duration(((total - done) / rt) * 1000);
    }
    return el('td', { class: 'progress-col' }, bar, el('span', { class: 'small', text }));
  }

  function renderRuns() {
    const body = $('#runs tbody');
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.run : null;
    const rows = state.runs.map((r) => {
      const cs = r.customStatus;
      const sel = r.instanceId === state.selected;
      const open = el('button', { type: 'button', class: 'link', 'data-run': r.instanceId, 'aria-pressed': String(sel),
        title: 'Run ' + r.instanceId + ' — show its items', text: localTime(r.createdTime) });
      open.addEventListener('click', () => select(r.instanceId, true));
      const rt = rate(r);
      return el('tr', { class: sel ? 'selected' : '' },
        el('td', {}, open),
        el('td', { text: cs.entity }),
        el('td', {}, cs.trigger === 'timer' ? 'nightly' : cs.trigger, modeTag(cs)),
        el('td', {}, badge(r.runtimeStatus), cs.reason ? el('span', { class: 'warn-mark', title: cs.reason, 'aria-label': 'has a reason: ' + cs.reason, text: ' ⚠' }) : null),
        progressCell(r),
        el('td', { text: duration(elapsed(r)) }),
        el('td', { class: 'num', text: rt ? (rt >= 10 ? Math.round(rt) : rt.toFixed(1)) + '/s' : '' }),
        OUTCOMES.map((o) => el('td', { class: 'num' + ((o === 'failed' || o === 'conflict') && cs.counts[o] > 0 ? ' bad' : ''), 'data-outcome': o, text: num(cs.counts[o]) })));
    });
    body.replaceChildren(...rows);
    $('#runs-empty').hidden = rows.length > 0;
    if (focused) {
      const b = body.querySelector(`button[data-run="${CSS.escape(focused)}"]`);
      if (b) b.focus();
    }
  }

  // ---- run detail ----
  function selectedRun() {
    return state.runs.find((r) => r.instanceId === state.selected) || null;
  }

  async function select(id, userAction) {
    const changed = id !== state.selected;
    state.selected = id;
    if (changed) {
      state.tokens = [''];
      state.page = 0;
      let run = selectedRun();
      if (!run) {
        const r = await api('product-sync/' + encodeURIComponent(id));
        if (r.status !== 200 && r.status !== 202) {
          say('Run ' + id + ': ' + problemText(r), 'error');
          return;
        }
        run = r.body;
        state.runs = [run, ...state.runs];
      }
      const c = run.customStatus.counts;
      state.filter = c.failed > 0 || !(c.conflict > 0) ? 'failed' : 'conflict';
      if (run.customStatus.mode === 'verify') state.filter = 'differs';
      history.replaceState(null, '', '#run=' + encodeURIComponent(id));
    }
    renderRuns();
    renderDetail();
    await loadItems();
    if (userAction) $('#detail-heading').focus();
  }

  function renderDetail() {
    const run = selectedRun();
    const sec = $('#detail');
    if (!run) { sec.hidden = true; return; }
    sec.hidden = false;
    const cs = run.customStatus;
    $('#detail-heading').textContent = `${cs.entity === 'user' ? 'User' : 'Product'} run ${localTime(run.createdTime)}`;
    const dl = $('#detail-summary');
    const raw = 'product-sync/' + encodeURIComponent(run.instanceId) + (code ? '?code=' + encodeURIComponent(code) : '');
    const pairs = [
      ['Run id', [run.instanceId, ' ', el('a', { href: raw, title: 'The run status as the API returns it', text: '(JSON)' })]], ['Status', badge(run.runtimeStatus)], ['Trigger', cs.trigger === 'timer' ? 'nightly (timer)' : cs.trigger],
      ['Name', run.name || '—'], ['Started', localTime(run.createdTime)], ['Last update', localTime(run.lastUpdatedTime)],
      ['Items', `${num(cs.done)} of ${num(cs.total)}${cs.planned ? '' : ' (still planning)'}`], ['Duration', duration(elapsed(run))],
      ...modeSummary(cs),
    ];
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
    const reason = $('#detail-reason');
    reason.hidden = !cs.reason;
    reason.textContent = cs.reason || '';
    for (const tab of document.querySelectorAll('.tab')) {
      const s = tab.dataset.status;
      tab.setAttribute('aria-pressed', String(s === state.filter));
      tab.querySelector('.count').textContent = '(' + num(s ? cs.counts[s] : cs.done) + ')';
    }
    modeTabs(cs);
  }

  async function loadItems() {
    const run = selectedRun();
    if (!run) return;
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.filter) q.set('status', state.filter);
    const token = state.tokens[state.page];
    if (token) q.set('continuation', token);
    const r = await api(`product-sync/${encodeURIComponent(run.instanceId)}/results?${q}`);
    if (!r.ok) {
      say('Items: ' + problemText(r), 'error');
      return;
    }
    state.next = r.body.continuation || '';
    renderItems(r.body.items || []);
  }

  function detailView(d) {
    if (!d || typeof d !== 'object') return '';
    const sides = ['primary', 'fallback', 'merged'].filter((k) => d[k] && typeof d[k] === 'object');
    const label = sides.length > 1 ? 'Compare ' + sides.join(' / ') : sides.length === 1 ? `The ${sides[0]}'s row` : 'Detail';
    const wrap = el('details', {}, el('summary', { text: label }));
    if (sides.length < 2) {
      // One side only (the other had no row): its row as it was.
      wrap.append(el('pre', { text: JSON.stringify(sides.length ? d[sides[0]] : d, null, 2) }));
      return wrap;
    }
    const fields = [...new Set(sides.flatMap((k) => Object.keys(d[k])))];
    const show = (v) => (v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));
    const table = el('table', { class: 'compare' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Field' }), sides.map((k) => el('th', { scope: 'col', text: k })))),
      el('tbody', {}, fields.map((f) => {
        const vals = sides.map((k) => show(d[k][f]));
        const differs = new Set(vals).size > 1;
        return el('tr', { class: differs ? 'differs' : '' }, el('th', { scope: 'row', text: f }), vals.map((v) => el('td', { text: v })));
      })));
    wrap.append(table);
    return wrap;
  }

  function renderItems(items) {
    const body = $('#items tbody');
    body.replaceChildren(...items.map((it) => el('tr', {},
      el('td', { class: 'num', text: it.id }),
      el('td', { text: it.entity }),
      el('td', {}, el('span', { class: 'badge o-' + it.status, text: it.status })),
      el('td', { class: 'reason-cell', text: it.reason || '' }),
      el('td', { text: localTime(it.at) }),
      el('td', {}, it.status === 'differs' ? driftView(it.detail) : detailView(it.detail)))));
    $('#items-empty').hidden = items.length > 0;
    $('#items-prev').disabled = state.page === 0;
    $('#items-next').disabled = !state.next;
    $('#items-page').textContent = `Page ${state.page + 1}` + (items.length ? ` · ${items.length} item${items.length === 1 ? '' : 's'}` : '');
  }

  // ---- refresh loop ----
  function setRefreshState(text) { $('#refresh-state').textContent = text; }

  async function refresh() {
    clearTimeout(state.timer);
    if (state.loading) {
      state.again = true;
      return;
    }
    state.loading = true;
    let failed = false;
    try {
      const [health] = await Promise.all([loadHealth(), loadRuns()]);
      const run = selectedRun();
      if (run) {
        renderDetail();
        if (isActive(run) || state.signature === '') await loadItems();
      }
      const sig = JSON.stringify([health, state.runs.map((r) => [r.instanceId, r.runtimeStatus, r.customStatus.done, r.customStatus.total])]);
      if (sig !== state.signature) {
        state.signature = sig;
        state.lastChange = Date.now();
      }
      if ($('#message').classList.contains('error')) say('');
    } catch (err) {
      failed = true;
      say('Could not refresh: ' + err.message, 'error');
    } finally {
      state.loading = false;
    }
    if (state.again) {
      state.again = false;
      refresh();
      return;
    }
    schedule(failed);
  }

  function schedule(failed) {
    clearTimeout(state.timer);
    const now = new Date();
    const at = `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
    const active = state.runs.some(isActive);
    if (!active && !failed) {
      setRefreshState(`Up to date at ${at} · nothing running, auto-refresh off`);
      return;
    }
    const still = Date.now() - state.lastChange;
    if (still > GIVE_UP_AFTER) {
      setRefreshState(`Nothing moved for ${duration(still)} · auto-refresh paused at ${at}`);
      return;
    }
    const delay = failed || still > SLOW_AFTER ? SLOW : FAST;
    setRefreshState(`Refreshing every ${delay / 1000}s while a run is in progress · last ${at}` +
      (still > SLOW_AFTER ? ` · no progress for ${duration(still)}` : ''));
    if (!document.hidden) state.timer = setTimeout(refresh, delay);
  }

  async function start(entity, button) {
    const buttons = document.querySelectorAll('.actions button');
    buttons.forEach((b) => { b.disabled = true; });
    say(`Starting a ${entity} run…`);
    try {
      const r = await api('start-product-sync', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(startBody(entity, button)),
      });
      if (r.status !== 202) {
        say(`Could not start the ${entity} run: ${problemText(r)}`, 'error');
        return;
      }
      say(`Started ${entity} run ${r.body.id}.`, 'ok');
      state.lastChange = Date.now();
      state.selected = null;
      await loadRuns();
      await select(r.body.id, false);
      await refresh();
    } catch (err) {
      say(`Could not start the ${entity} run: ${err.message}`, 'error');
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      button.focus();
    }
  }

  // ---- run modes (full, diff, verify) and drift reports ----
  // A run's mode beside its trigger; a verify run's differing items too.
  function modeTag(cs) {
    if (!cs.mode) return null;
    const text = cs.mode === 'verify' ? ` · verify · ${num(cs.differs || 0)} differ` : ` · ${cs.mode}`;
    return el('span', { class: 'mode m-' + cs.mode, 'data-mode': cs.mode, text });
  }

  function modeSummary(cs) {
    if (!cs.mode) return [];
    const pairs = [['Mode', cs.mode]];
    if (cs.mode === 'verify') pairs.push(['Differing', num(cs.differs || 0)]);
    return pairs;
  }

  // The Differs tab exists for verify runs only.
  function modeTabs(cs) {
    const tab = document.querySelector('.tab[data-status="differs"]');
    if (tab) tab.hidden = cs.mode !== 'verify';
  }

  function startBody(entity, button) {
    const body = { entity };
    if (button && button.dataset.mode) body.mode = button.dataset.mode;
    return body;
  }

  // A drift report's item: both databases' rows side by side (a missing
  // row shown as such), the differing columns marked, and what differs.
  function driftView(d) {
    if (!d || typeof d !== 'object') return '';
    const differences = Array.isArray(d.differences) ? d.differences : [];
    const marked = new Set(Array.isArray(d.fields) ? d.fields : []);
    if (differences.includes('vector')) marked.add('version');
    const sides = ['primary', 'fallback'];
    const rows = sides.map((k) => (d[k] && typeof d[k] === 'object' ? d[k] : null));
    const fields = [...new Set(rows.flatMap((r) => (r ? Object.keys(r) : [])))];
    const show = (v) => (v === undefined ? '—' : v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v));
    const wrap = el('details', { class: 'drift' },
      el('summary', { text: 'Compare primary / fallback: ' + (differences.join(', ') || 'no difference left') }));
    const table = el('table', { class: 'compare' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Field' }), sides.map((k) => el('th', { scope: 'col', text: k })))),
      el('tbody', {}, fields.map((f) => el('tr', { class: marked.has(f) ? 'differs' : '', 'data-field': f },
        el('th', { scope: 'row', text: f }),
        rows.map((r) => el('td', { text: r ? show(r[f]) : '(no row)' }))))));
    wrap.append(table);
    return wrap;
  }

  function init() {
    for (const b of document.querySelectorAll('.actions button')) {
      b.addEventListener('click', () => start(b.dataset.entity, b));
    }
    $('#refresh').addEventListener('click', () => { state.lastChange = Date.now(); refresh(); });
    $('#runs-limit').addEventListener('change', () => refresh());
    for (const tab of document.querySelectorAll('.tab')) {
      tab.addEventListener('click', async () => {
        state.filter = tab.dataset.status;
        state.tokens = [''];
        state.page = 0;
        renderDetail();
        await loadItems();
      });
    }
    $('#items-next').addEventListener('click', async () => {
      if (!state.next) return;
      state.tokens[state.page + 1] = state.next;
      state.page++;
      await loadItems();
    });
    $('#items-prev').addEventListener('click', async () => {
      if (state.page === 0) return;
      state.page--;
      await loadItems();
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
    const m = /^#run=([A-Za-z0-9-]{1,64})$/.exec(location.hash);
    refresh().then(() => { if (m) select(decodeURIComponent(m[1]), false); });
  }

  init();
})();
