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
  const RUN_ID = /^[0-9]{13}[0-9a-f]{10}$/;
  const REALTIME = /^realtime-(\d{4})(\d{2})(\d{2})$/;
  const ANY_ID = /^[A-Za-z0-9-]{1,64}$/;
  const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

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
      else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'scope' || k === 'title' || k === 'colspan' || k === 'datetime' || k === 'href') e.setAttribute(k, v);
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
    selected: null,        // run id or realtime-YYYYMMDD
    filter: 'failed',      // results status filter, '' = all
    filterChosen: false,   // the user picked the tab: keep it
    tokens: [''],          // continuation token of each page seen, for Previous
    page: 0,
    next: '',
    open: new Set(),       // item rows whose detail row is open ("entity-id")
    healthPath: 'health/details', // falls back to health where the keyed route is missing
    timer: 0,
    signature: '',
    lastChange: Date.now(),
    loading: false,
    pct: new Map(),        // run id -> the highest percentage shown: progress never goes backwards
    idFilter: '',          // the items list narrowed to one item id
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
    const b = r.body && typeof r.body === 'object' ? r.body : null;
    const fields = b && b.errors ? ' (' + Object.entries(b.errors).map(([k, v]) => `${k}: ${v}`).join('; ') + ')' : '';
    return ((b && (b.detail || b.title)) || `HTTP ${r.status}`) + fields;
  };

  function say(text, kind) {
    const m = $('#message');
    m.textContent = text;
    m.className = 'message' + (kind ? ' ' + kind : '');
    m.hidden = !text;
  }

  // ---- formatting: every time is shown in the browser's zone, labelled ----
  const pad = (n) => String(n).padStart(2, '0');
  function zoneLabel(d) {
    const off = -d.getTimezoneOffset();
    if (off === 0) return 'UTC';
    const a = Math.abs(off);
    return `UTC${off > 0 ? '+' : '-'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }
  function timeText(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneLabel(d)}`;
  }
  // A time as an element: local time with its zone, the UTC value on hover.
  // Its text is timeText's; the date is a span of its own so that a narrow
  // column can put it above the clock.
  function timeEl(iso) {
    if (!iso) return '';
    const t = timeText(iso);
    const cut = t.indexOf(' ');
    if (cut < 0) return el('time', { class: 't', datetime: iso, title: iso, text: t });
    return el('time', { class: 't', datetime: iso, title: iso }, el('span', { class: 'd', text: t.slice(0, cut) }), t.slice(cut));
  }
  // The on-call panel (oncall.js) writes its times the same way.
  window.dualsyncTime = Object.freeze({ text: timeText, el: timeEl });
  const clock = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneLabel(d)}`;
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
  const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : (many || one + 's')}`;
  const isActive = (r) => ACTIVE.has(r.runtimeStatus);
  // A run's own duration: to its end, or to finishedTime once a retry
  // round moved lastUpdatedTime on. A retry round has its own.
  function elapsed(r) {
    const start = Date.parse(r.createdTime);
    const cs = r.customStatus || {};
    const end = cs.finishedTime ? Date.parse(cs.finishedTime) : isActive(r) ? Date.now() : Date.parse(r.lastUpdatedTime);
    return end - start;
  }
  function retryElapsed(r) {
    const cs = r.customStatus || {};
    if (!cs.retryStartedTime) return -1;
    return (isActive(r) ? Date.now() : Date.parse(r.lastUpdatedTime)) - Date.parse(cs.retryStartedTime);
  }
  function rate(r) {
    const secs = elapsed(r) / 1000;
    const done = r.customStatus.done || 0;
    return secs > 0 && done > 0 ? done / secs : 0;
  }
  // A run's badge: a run that ended with failed items or conflicts is not
  // shown like a clean one, and one waiting on retries says so.
  function runBadge(r) {
    const cs = r.customStatus || {};
    const c = cs.counts || {};
    let text = r.runtimeStatus;
    let cls = 's-' + r.runtimeStatus.toLowerCase();
    if (r.runtimeStatus === 'Completed' && c.failed > 0) {
      text = `Completed · ${num(c.failed)} failed`; cls = 's-completed-failed';
    } else if (r.runtimeStatus === 'Completed' && c.conflict > 0) {
      text = `Completed · ${plural(c.conflict, 'conflict')}`; cls = 's-completed-conflict';
    } else if (isActive(r) && (cs.retrying > 0 || cs.retryPending > 0)) {
      text = 'Running · retrying'; cls = 's-retrying';
    }
    return el('span', { class: 'badge ' + cls, text });
  }
  const outcomeBadge = (status) => el('span', { class: 'badge o-' + status, text: status });

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
  // A local date (YYYY-MM-DD) as the instant its day starts here.
  function dayStart(v, plusDays) {
    const [y, m, d] = v.split('-').map(Number);
    return new Date(y, m - 1, d + (plusDays || 0)).toISOString();
  }

  async function loadRuns() {
    const seq = ++state.runsSeq;
    const q = new URLSearchParams({ limit: $('#runs-limit').value });
    if ($('#f-status').value) q.set('status', $('#f-status').value);
    if ($('#f-entity').value) q.set('entity', $('#f-entity').value);
    if ($('#f-from').value) q.set('from', dayStart($('#f-from').value));
    if ($('#f-to').value) q.set('to', dayStart($('#f-to').value, 1)); // the To day included
    const r = await api('product-sync?' + q);
    if (seq !== state.runsSeq) return;
    if (!r.ok) throw new Error('runs: ' + problemText(r));
    state.runs = Array.isArray(r.body) ? r.body : [];
    // A run opened by id stays in the list even when the filters leave it out.
    if (state.detailRun && !state.runs.some((x) => x.instanceId === state.detailRun.instanceId)) {
      const fresh = isActive(state.detailRun) ? await api('product-sync/' + encodeURIComponent(state.detailRun.instanceId)) : null;
      if (fresh && (fresh.status === 200 || fresh.status === 202)) state.detailRun = fresh.body;
    } else if (state.detailRun) {
      state.detailRun = state.runs.find((x) => x.instanceId === state.detailRun.instanceId);
    }
    renderRuns();
  }

  function progressCell(r) {
    const cs = r.customStatus;
    const total = cs.total || 0;
    const done = cs.done || 0;
    const active = isActive(r);
    const rt = active ? rate(r) : 0;
    const eta = rt > 0 && total > done ? duration(((total - done) / rt) * 1000) : '';
    let bar;
    let text;
    if (active && !cs.planned) {
      // The total still grows as pages are planned: a percentage of it
      // would fall, so the bar is indeterminate and the ETA a lower bound.
      bar = el('progress', { 'aria-label': `${num(done)} items done, ${num(total)} found so far, still planning` });
      text = `${num(done)} done · ${num(total)} found so far · planning`;
      if (eta) text += ' · ETA ≥ ' + eta;
    } else {
      let pct = total > 0 ? Math.floor((done * 100) / total) : (r.runtimeStatus === 'Completed' ? 100 : 0);
      pct = Math.max(pct, state.pct.get(r.instanceId) || 0);
      state.pct.set(r.instanceId, pct);
      bar = el('progress', { max: 100, value: pct, 'aria-label': `${num(done)} of ${num(total)} items done` });
      text = `${num(done)} / ${num(total)}${cs.planned ? '' : '+'} · ${pct}%`;
      if (active && cs.retrying > 0) text += ` · retrying ${plural(cs.retrying, 'item')} after a failed attempt`;
      else if (eta) text += ' · ETA ' + eta;
    }
    if (active && cs.retryPending > 0) text += ` · retry round ${cs.retryRound}: ${plural(cs.retryPending, 'item')} to go`;
    return el('td', { class: 'progress-col', 'data-label': 'Progress' }, bar, el('span', { class: 'small', text }));
  }

  // A failed or conflict count links to those items of the run.
  function countCell(r, o) {
    const n = r.customStatus.counts[o] || 0;
    const label = o[0].toUpperCase() + o.slice(1);
    const td = el('td', { class: 'num' + ((o === 'failed' || o === 'conflict') && n > 0 ? ' bad' : ''), 'data-outcome': o, 'data-label': label });
    if ((o === 'failed' || o === 'conflict') && n > 0) {
      const a = el('a', { href: `#run=${r.instanceId}&status=${o}`, class: 'count-link', 'data-run': r.instanceId, 'data-status': o,
        title: `Show the run's ${o} items`, text: num(n) });
      a.addEventListener('click', (ev) => { ev.preventDefault(); select(r.instanceId, true, o); });
      td.append(a);
    } else {
      td.textContent = num(n);
    }
    return td;
  }

  function renderRuns() {
    const body = $('#runs tbody');
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.run : null;
    const rows = state.runs.map((r) => {
      const cs = r.customStatus;
      const sel = r.instanceId === state.selected;
      const open = el('button', { type: 'button', class: 'link', 'data-run': r.instanceId, 'aria-pressed': String(sel),
        title: 'Run ' + r.instanceId + ' — show its items' }, timeEl(r.createdTime));
      open.addEventListener('click', () => select(r.instanceId, true));
      const rt = rate(r);
      return el('tr', { class: sel ? 'selected' : '' },
        el('td', { class: 'started', 'data-label': 'Started' }, open),
        el('td', { 'data-label': 'Entity', text: cs.entity }),
        el('td', { 'data-label': 'Trigger' }, cs.trigger === 'timer' ? 'nightly' : cs.trigger, modeTag(cs)),
        el('td', { class: 'status', 'data-label': 'Status' }, runBadge(r), (cs.reason || cs.waiting) ? el('span', { class: 'warn-mark', title: cs.reason || cs.waiting, 'aria-label': 'has a reason: ' + (cs.reason || cs.waiting), text: ' ⚠' }) : null),
        progressCell(r),
        el('td', { 'data-label': 'Duration' }, duration(elapsed(r)),
          retryElapsed(r) >= 0 ? el('span', { class: 'small muted retry-duration', title: `retry round ${cs.retryRound}, started ${timeText(cs.retryStartedTime)}`,
            text: ` retry ${duration(retryElapsed(r))}` }) : null),
        el('td', { class: 'num', 'data-label': 'Rate', text: rt ? (rt >= 10 ? Math.round(rt) : rt.toFixed(1)) + '/s' : '' }),
        OUTCOMES.map((o) => countCell(r, o)));
    });
    body.replaceChildren(...rows);
    const filtered = $('#f-status').value || $('#f-entity').value || $('#f-from').value || $('#f-to').value;
    $('#runs-empty').textContent = filtered ? 'No runs match these filters.' : 'No runs yet. Start one with the buttons above.';
    $('#runs-empty').hidden = rows.length > 0;
    if (focused) {
      const b = body.querySelector(`button[data-run="${CSS.escape(focused)}"]`);
      if (b) b.focus();
    }
  }

  // ---- run detail ----
  function selectedRun() {
    if (!state.selected) return null;
    const m = REALTIME.exec(state.selected);
    if (m) return { instanceId: state.selected, realtime: true, day: `${m[1]}-${m[2]}-${m[3]}` };
    return state.runs.find((r) => r.instanceId === state.selected) ||
      (state.detailRun && state.detailRun.instanceId === state.selected ? state.detailRun : null);
  }

  // The tab a run opens on: the one that has items.
  function pickTab(run) {
    if (run.realtime) return 'failed';
    if (run.customStatus.mode === 'verify') return 'differs';
    const c = run.customStatus.counts;
    if (c.failed > 0) return 'failed';
    if (c.conflict > 0) return 'conflict';
    return isActive(run) ? 'failed' : '';
  }

  async function select(id, userAction, status) {
    const changed = id !== state.selected;
    if (changed) {
      let run = REALTIME.test(id) ? null : state.runs.find((r) => r.instanceId === id);
      if (!REALTIME.test(id) && !run) {
        const r = await api('product-sync/' + encodeURIComponent(id));
        if (r.status !== 200 && r.status !== 202) {
          say('Run ' + id + ': ' + problemText(r), 'error');
          return false;
        }
        run = r.body;
      }
      state.detailRun = run;
      state.selected = id;
      state.open = new Set();
      state.idFilter = '';
      $('#items-id').value = '';
    }
    const run = selectedRun();
    if (changed || status !== undefined) {
      state.tokens = [''];
      state.page = 0;
      state.filterChosen = status !== undefined;
      state.filter = status !== undefined ? status : pickTab(run);
    }
    history.replaceState(null, '', '#run=' + encodeURIComponent(id) + (state.filterChosen ? '&status=' + state.filter : ''));
    renderRuns();
    renderDetail();
    await loadItems();
    if (userAction) $('#detail-heading').focus();
    return true;
  }

  function renderDetail() {
    const run = selectedRun();
    const sec = $('#detail');
    if (!run) { sec.hidden = true; return; }
    sec.hidden = false;
    const dl = $('#detail-summary');
    const raw = 'product-sync/' + encodeURIComponent(run.instanceId) + (run.realtime ? '/results' : '') + (code ? '?code=' + encodeURIComponent(code) : '');
    const json = el('a', { href: raw, title: 'As the API returns it', text: '(JSON)' });
    if (run.realtime) {
      $('#detail-heading').textContent = `Real-time outcomes of ${run.day} (UTC day)`;
      dl.replaceChildren(...[
        ['Partition', [run.instanceId, ' ', json]], ['Day', `${run.day} 00:00 – 24:00 UTC`],
        ['Shows', 'each item\'s latest outcome that day'],
        ['Waiting', 'items whose retries ran out during an outage: the outbox relay sends them again; not failed unless the wait outlasts OUTBOX_STALE_AFTER (5 min by default)'],
      ].flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
      $('#detail-reason').hidden = true;
      $('#detail-retry').hidden = true;
    } else {
      // A run whose tab was picked while its counts were still coming in
      // moves to the tab that has items, unless the user chose one.
      if (!state.filterChosen && pickTab(run) !== state.filter && !isActive(run)) {
        state.filter = pickTab(run);
        state.tokens = [''];
        state.page = 0;
        state.reload = true;
      }
      const cs = run.customStatus;
      $('#detail-heading').replaceChildren(`${cs.entity === 'user' ? 'User' : 'Product'} run `, timeEl(run.createdTime));
      const pairs = [
        ['Run id', [run.instanceId, ' ', json]], ['Status', runBadge(run)], ['Trigger', cs.trigger === 'timer' ? 'nightly (timer)' : cs.trigger],
        ['Name', run.name || '—'], ['Started', timeEl(run.createdTime)], ['Last update', timeEl(run.lastUpdatedTime)],
        ['Items', `${num(cs.done)} of ${num(cs.total)}${cs.planned ? '' : ' (still planning)'}`], ['Duration', duration(elapsed(run))],
        ...modeSummary(cs),
      ];
      if (cs.waiting) pairs.push(['Waiting', cs.waiting]);
      if (cs.retrying > 0) pairs.push(['Retrying', `${plural(cs.retrying, 'item')} after a failed attempt`]);
      if (cs.retryRound > 0) {
        pairs.push(['Retry rounds', `${num(cs.retryRound)}${cs.retryPending > 0 ? ` · ${plural(cs.retryPending, 'item')} to go` : ''}`]);
        if (cs.retryStartedTime) {
          pairs.push(['Latest retry', [timeEl(cs.retryStartedTime), isActive(run) ? ` · running for ${duration(retryElapsed(run))}` : ` · took ${duration(retryElapsed(run))}`]]);
        }
      }
      dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
      const reason = $('#detail-reason');
      reason.hidden = !cs.reason;
      reason.textContent = cs.reason || '';
      const failed = cs.counts.failed || 0;
      const canRetry = (run.runtimeStatus === 'Completed' && failed > 0) || (isActive(run) && cs.retryPending > 0);
      $('#detail-retry').hidden = !canRetry && !(cs.retryRound > 0);
      const btn = $('#retry-failed');
      btn.disabled = !canRetry;
      btn.hidden = !canRetry;
      btn.textContent = isActive(run) && cs.retryPending > 0 ? 'Send the retry again' : `Retry ${plural(failed, 'failed item')}`;
      $('#retry-note').textContent = isActive(run) && cs.retryPending > 0
        ? `Round ${cs.retryRound} is under way: sending again only repeats what has not come back.`
        : cs.retryRound > 0 ? `${plural(cs.retryRound, 'retry round')} so far; each item's new outcome replaced its failed one.`
          : 'Sends them again; each new outcome replaces the failed one in the counts.';
    }
    // Items a diff or verify run found unchanged in bulk are counted but
    // have no result to list: the All tab says how many it lists.
    const bulk = run.realtime ? 0 : run.customStatus.compared || 0;
    for (const tab of document.querySelectorAll('.tab')) {
      const s = tab.dataset.status;
      tab.setAttribute('aria-pressed', String(s === state.filter));
      let count = run.realtime ? '' : '(' + num(s ? run.customStatus.counts[s] : run.customStatus.done) + ')';
      if (!run.realtime && !s && bulk > 0) count = `(${num(Math.max(0, run.customStatus.done - bulk))} listed of ${num(run.customStatus.done)})`;
      tab.querySelector('.count').textContent = count;
    }
    const note = $('#items-note');
    note.hidden = !(bulk > 0 && (state.filter === '' || state.filter === 'unchanged'));
    note.textContent = `${plural(bulk, 'item')} found unchanged in bulk (compared by range, not one by one) ${bulk === 1 ? 'is' : 'are'} counted as unchanged but not listed.`;
    $('#items-id-clear').hidden = !state.idFilter;
    modeTabs(run);
  }

  async function loadItems() {
    const run = selectedRun();
    if (!run) return;
    state.reload = false;
    if (state.idFilter) {
      await loadItem(run, state.idFilter);
      return;
    }
    $('#items-empty').textContent = 'No items with this outcome.';
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

  // The items list narrowed to one id: its outcome in the run (or the
  // day's, for either entity) when it has the tab's status.
  async function loadItem(run, id) {
    const entities = run.realtime ? ['product', 'user'] : [run.customStatus.entity];
    const items = [];
    const other = [];
    for (const e of entities) {
      try {
        const h = await itemHistory(run.instanceId, e, id);
        if (!h.outcome) continue;
        if (!state.filter || h.outcome.status === state.filter) items.push(h.outcome);
        else other.push(`${e} ${id} is ${h.outcome.status}`);
      } catch (err) {
        say(`Item ${id}: ${err.message}`, 'error');
        return;
      }
    }
    state.next = '';
    $('#items-empty').textContent = `No ${state.filter ? state.filter + ' ' : ''}outcome for id ${id} here` + (other.length ? ` (${other.join('; ')}: see the All items tab).` : '.');
    renderItems(items);
  }

  // A value as the comparison shows it: times in the page's zone.
  // A version vector reads as its two counters, never as JSON.
  const isVector = (v) => v && typeof v === 'object' && Object.keys(v).length === 2 && 'primary' in v && 'fallback' in v;
  function shown(v) {
    if (v === undefined) return '—';
    if (v === null) return 'null';
    if (isVector(v)) return `primary ${v.primary} · fallback ${v.fallback}`;
    if (typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k}: ${shown(x)}`).join(' · ');
    return String(v);
  }
  const valueEl = (v) => (typeof v === 'string' && ISO_TIME.test(v) ? timeEl(v) : shown(v));

  // An item's detail as a comparison, whatever its kind.
  const detailView = (it) => (it.status === 'differs' ? driftView(it.detail) : compareView(it.detail));

  // A table of rows side by side: one column per side, each field a row,
  // the differing fields marked.
  function sideBySide(caption, cols, marked) {
    const fields = [...new Set(cols.flatMap((c) => (c.row ? Object.keys(c.row) : [])))];
    return el('table', { class: 'compare' },
      el('caption', { class: 'small muted', text: caption }),
      el('colgroup', {}, el('col', { class: 'c-field' }), cols.map(() => el('col', { class: 'c-side' }))),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Field' }), cols.map((c) => el('th', { scope: 'col', text: c.label })))),
      el('tbody', {}, fields.map((f) => {
        const differs = marked ? marked(f) : new Set(cols.map((c) => (c.row ? shown(c.row[f]) : '(no row)'))).size > 1;
        return el('tr', { class: differs ? 'differs' : '', 'data-field': f },
          el('th', { scope: 'row', text: f }),
          cols.map((c) => el('td', { 'data-label': c.label, 'data-side': c.side }, c.row ? valueEl(c.row[f]) : '(no row)')));
      })));
  }

  // An email clash: the user's row beside the other user that holds its
  // email on the side it was to be copied to.
  function clashView(d) {
    const cols = [];
    for (const k of ['primary', 'fallback']) if (d[k] && typeof d[k] === 'object') cols.push({ label: k, side: k, row: d[k] });
    const held = d.emailHeldBy && typeof d.emailHeldBy === 'object' ? d.emailHeldBy : {};
    const notes = [];
    for (const [k, h] of Object.entries(held)) {
      if (!h || typeof h !== 'object') continue;
      cols.push({ label: `${k}: user ${h.id} holds the email`, side: 'held-' + k, row: h });
      notes.push(`the ${k} already has ${h.email || 'this email'} on user ${h.id}`);
    }
    const caption = notes.length ? `Email clash: ${notes.join('; ')}. Neither row was copied; change one email, then sync again.`
      : 'Email clash: both versions as sync read them.';
    return sideBySide(caption, cols, (f) => f === 'email');
  }

  // The comparison of a conflict's versions: one column per side, the
  // merged value marked with the side it came from.
  function compareView(d) {
    if (d && d.emailHeldBy) return clashView(d);
    const sides = ['primary', 'fallback', 'merged'].filter((k) => d[k] && typeof d[k] === 'object');
    if (sides.length < 2) {
      // One side only (the other had no row): its row as it was.
      if (!sides.length) return el('pre', { text: JSON.stringify(d, null, 2) });
      const other = sides[0] === 'primary' ? 'fallback' : 'primary';
      return sideBySide(`Only the ${sides[0]} had a row.`, [{ label: sides[0], side: sides[0], row: d[sides[0]] }, { label: other, side: other, row: null }]);
    }
    const fields = [...new Set(sides.flatMap((k) => Object.keys(d[k])))];
    const src = (f) => {
      if (!d.merged || !d.primary || !d.fallback) return '';
      const m = shown(d.merged[f]); const p = shown(d.primary[f]); const q = shown(d.fallback[f]);
      if (m === p && m === q) return '';
      if (m === p) return 'primary';
      if (m === q) return 'fallback';
      return 'combined';
    };
    return el('table', { class: 'compare' },
      el('caption', { class: 'small muted', text: 'Both versions as sync read them' + (d.merged ? ' and the merged row written to both; each merged value that differs says where it came from.' : '.') }),
      el('colgroup', {}, el('col', { class: 'c-field' }), sides.map(() => el('col', { class: 'c-side' }))),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Field' }), sides.map((k) => el('th', { scope: 'col', text: k })))),
      el('tbody', {}, fields.map((f) => {
        const vals = sides.map((k) => shown(d[k][f]));
        const differs = new Set(vals).size > 1;
        const from = src(f);
        return el('tr', { class: differs ? 'differs' : '', 'data-field': f },
          el('th', { scope: 'row', text: f }),
          sides.map((k) => el('td', { 'data-label': k, 'data-side': k },
            el('span', { class: 'v' }, valueEl(d[k][f])),
            k === 'merged' && from ? el('span', { class: 'src src-' + from, text: from === 'combined' ? 'combined from both' : 'from ' + from }) : null)));
      })));
  }

  function historyView(h) {
    const o = h.outcome;
    return el('div', { class: 'history' },
      el('p', {}, o ? [outcomeBadge(o.status), ' recorded ', timeEl(o.at), o.retry ? ` by retry round ${o.retry}` : '', o.attempts ? ` after ${plural(o.attempts, 'failed attempt')}` : '']
        : 'No outcome recorded yet.'),
      o && o.reason ? el('p', { class: 'reason-text', text: o.reason }) : null,
      el('p', { class: 'small muted', text: h.attempts ? `${plural(h.attempts, 'failed attempt')} in all${h.history.length < h.attempts ? `, the newest ${h.history.length} below` : ''}:` : 'No failed attempt.' }),
      h.history.length ? el('ol', { class: 'attempts' }, h.history.map((a) => el('li', {}, timeEl(a.at), a.retry ? ` (retry round ${a.retry})` : '', ': ', a.reason))) : null);
  }

  async function itemHistory(partition, entity, id) {
    const r = await api(`product-sync/${encodeURIComponent(partition)}/items/${entity}/${id}`);
    if (!r.ok) throw new Error(problemText(r));
    return r.body;
  }

  // A waiting item's reason with its times in the page's zone: when the
  // relay tries again, when the wait turns into a failure, the last error.
  function waitingText(it) {
    const last = (it.reason || '').replace(/^waiting for the relay \(next try by [^)]*\): /, '');
    return ['Waiting for the outbox relay: next try by ', timeEl(it.detail.nextTryBy),
      '; failed if still failing at ', timeEl(it.detail.failsAfter), '. Last error: ', last];
  }

  function renderItems(items) {
    const body = $('#items tbody');
    const run = selectedRun();
    const rows = [];
    for (const it of items) {
      const key = `${it.entity}-${it.id}`;
      const waiting = it.status === 'waiting' && it.detail && it.detail.nextTryBy;
      const hasCompare = !waiting && it.detail && typeof it.detail === 'object';
      const toggle = el('button', { type: 'button', class: 'secondary small toggle', 'aria-expanded': String(state.open.has(key)),
        'data-item': key, text: hasCompare ? 'Compare' : 'Attempts' });
      const row = el('tr', { 'data-item': key },
        el('td', { class: 'num', 'data-label': 'Id', text: it.id }),
        el('td', { 'data-label': 'Entity', text: it.entity }),
        el('td', { 'data-label': 'Outcome' }, outcomeBadge(it.status), it.retry ? el('span', { class: 'small muted', text: ` retry ${it.retry}` }) : null),
        el('td', { class: 'reason-cell', 'data-label': 'Reason' }, waiting ? waitingText(it) : it.reason || ''),
        el('td', { class: 'num', 'data-label': 'Attempts', title: 'failed attempts before this outcome', text: num(attemptsOf(it)) }),
        el('td', { 'data-label': 'Recorded' }, timeEl(it.at)),
        el('td', { 'data-label': 'Detail' }, toggle));
      // The detail opens in a row of its own, the table's full width, so a
      // long value never squeezes or clips the comparison.
      const extra = el('tr', { class: 'extra', 'data-for': key, hidden: !state.open.has(key) },
        el('td', { colspan: '7' }, hasCompare ? detailView(it) : el('p', { class: 'muted small', text: 'Loading…' })));
      const fill = async () => {
        if (hasCompare || extra.dataset.loaded) return;
        extra.dataset.loaded = '1';
        try {
          extra.firstChild.replaceChildren(historyView(await itemHistory(run.instanceId, it.entity, it.id)));
        } catch (err) {
          extra.firstChild.replaceChildren(el('p', { class: 'bad', text: 'Attempts: ' + err.message }));
        }
      };
      toggle.addEventListener('click', () => {
        const open = extra.hidden;
        extra.hidden = !open;
        toggle.setAttribute('aria-expanded', String(open));
        if (open) { state.open.add(key); fill(); } else state.open.delete(key);
      });
      if (state.open.has(key)) fill();
      rows.push(row, extra);
    }
    body.replaceChildren(...rows);
    $('#items-empty').hidden = items.length > 0;
    $('#items-prev').disabled = state.page === 0;
    $('#items-next').disabled = !state.next;
    $('#items-page').textContent = `Page ${state.page + 1}` + (items.length ? ` · ${plural(items.length, 'item')}` : '');
  }

  // Failed attempts before an outcome: the recorded count, or for an
  // outcome recorded without one (a conflict that gave up) its reason's.
  function attemptsOf(it) {
    if (it.attempts) return it.attempts;
    const m = /gave up after (\d+) attempts/.exec(it.reason || '');
    return m ? Number(m[1]) : 0;
  }

  // ---- find ----
  const todayUTC = () => new Date().toISOString().slice(0, 10).replaceAll('-', '');

  async function find(q, entity) {
    q = q.trim();
    if (!q) return;
    if (/^\d{1,19}$/.test(q)) {
      const partition = state.selected || 'realtime-' + todayUTC();
      const sec = $('#item');
      try {
        const h = await itemHistory(partition, entity, q);
        const where = REALTIME.test(partition) ? `real-time outcomes of ${REALTIME.exec(partition).slice(1).join('-')} (UTC)` : `run ${partition}`;
        $('#item-heading').textContent = `${entity === 'user' ? 'User' : 'Product'} ${q} in ${where}`;
        const o = h.outcome;
        $('#item-body').replaceChildren(historyView(h),
          o && o.detail && typeof o.detail === 'object' && !(o.status === 'waiting' && o.detail.nextTryBy) ? detailView(o) : '');
        sec.hidden = false;
        $('#item-heading').focus();
        say('');
      } catch (err) {
        say(`${entity} ${q} in ${partition}: ${err.message}`, 'error');
      }
      return;
    }
    if (RUN_ID.test(q) || REALTIME.test(q) || ANY_ID.test(q)) {
      if (await select(q, true)) say('');
      return;
    }
    say(`"${q}" is neither a run id, realtime-YYYYMMDD nor an item id`, 'error');
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
      if (run && !run.realtime) {
        renderDetail();
        if (isActive(run) || state.signature === '' || state.reload) await loadItems();
      }
      const sig = JSON.stringify([health, state.runs.map((r) => [r.instanceId, r.runtimeStatus, r.customStatus.done, r.customStatus.total, r.customStatus.retrying, r.customStatus.retryPending])]);
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
    const at = clock(new Date());
    const run = selectedRun();
    const active = state.runs.some(isActive) || (run && !run.realtime && isActive(run));
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
    let started = '';
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
      started = r.body.id;
      await loadRuns();
      await select(r.body.id, false);
      await refresh();
    } catch (err) {
      say(`Could not start the ${entity} run: ${err.message}`, 'error');
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      // The started run's row, brought into view with the focus on it.
      const row = started && document.querySelector(`#runs tbody button[data-run="${CSS.escape(started)}"]`);
      if (row) {
        row.focus({ preventScroll: true });
        row.closest('tr').scrollIntoView({ block: 'center' });
      } else {
        button.focus();
      }
    }
  }

  async function retryFailed() {
    const run = selectedRun();
    if (!run || run.realtime) return;
    const btn = $('#retry-failed');
    btn.disabled = true;
    try {
      const r = await api('product-sync/' + encodeURIComponent(run.instanceId) + '/retry-failed', { method: 'POST' });
      if (r.status !== 202) {
        say('Could not retry: ' + problemText(r), 'error');
        return;
      }
      const b = r.body;
      say(b.resent ? `Sent the ${plural(b.items, 'item')} of retry round ${b.round} still without a new outcome again.`
        : `Retry round ${b.round}: sent ${plural(b.items, 'failed item')} again.`, 'ok');
      state.detailRun = b.status;
      state.lastChange = Date.now();
      await refresh();
    } finally {
      renderDetail();
    }
  }

  function openFromHash() {
    const m = /^#run=([A-Za-z0-9-]{1,64})(?:&status=(failed|conflict|differs|waiting|))?$/.exec(location.hash);
    if (m) select(decodeURIComponent(m[1]), false, m[2]);
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

  // The Differs tab exists for verify runs only; Waiting (real-time items
  // the outbox relay will send again) for real-time days only.
  function modeTabs(run) {
    const tab = document.querySelector('.tab[data-status="differs"]');
    if (tab) tab.hidden = (run.customStatus || {}).mode !== 'verify';
    const wait = document.querySelector('.tab[data-status="waiting"]');
    if (wait) wait.hidden = !run.realtime;
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
    return el('div', { class: 'drift' },
      sideBySide('Primary and fallback as verify read them. Differs: ' + (differences.join(', ') || 'no difference left'),
        sides.map((k, i) => ({ label: k, side: k, row: rows[i] })), (f) => marked.has(f)));
  }

  function init() {
    const now = new Date();
    $('#zone-note').textContent = `Times in ${zoneLabel(now)} (this browser's zone); hover a time for UTC.`;
    $('#rt-day').value = now.toISOString().slice(0, 10);
    for (const b of document.querySelectorAll('.actions button')) {
      b.addEventListener('click', () => start(b.dataset.entity, b));
    }
    $('#refresh').addEventListener('click', () => { state.lastChange = Date.now(); refresh(); });
    for (const id of ['#runs-limit', '#f-status', '#f-entity', '#f-from', '#f-to']) {
      $(id).addEventListener('change', () => { state.lastChange = Date.now(); refresh(); });
    }
    $('#search').addEventListener('submit', (ev) => { ev.preventDefault(); find($('#search-id').value, $('#search-entity').value); });
    $('#realtime').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('#rt-day').value;
      if (v) select('realtime-' + v.replaceAll('-', ''), true);
    });
    $('#retry-failed').addEventListener('click', retryFailed);
    $('#items-find').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const v = $('#items-id').value.trim();
      if (v && !/^\d{1,19}$/.test(v)) {
        say(`"${v}" is not an item id (digits only)`, 'error');
        return;
      }
      state.idFilter = v;
      state.tokens = [''];
      state.page = 0;
      renderDetail();
      await loadItems();
    });
    $('#items-id-clear').addEventListener('click', async () => {
      $('#items-id').value = '';
      state.idFilter = '';
      state.tokens = [''];
      state.page = 0;
      renderDetail();
      await loadItems();
    });
    for (const tab of document.querySelectorAll('.tab')) {
      tab.addEventListener('click', async () => {
        state.filter = tab.dataset.status;
        state.filterChosen = true;
        state.tokens = [''];
        state.page = 0;
        history.replaceState(null, '', '#run=' + encodeURIComponent(state.selected) + '&status=' + state.filter);
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
    window.addEventListener('hashchange', openFromHash);
    refresh().then(openFromHash);
  }

  init();
})();
