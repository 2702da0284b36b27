// orderledger console: a hash-routed single page over the ledger's API.
// No framework, no build step. Every call goes through api(), which adds the
// bearer token from sessionStorage (never a URL) and asks for it on a 401.
'use strict';

const TOKEN_KEY = 'orderledger.token';
const POLL_MS = 2000;
const RECONCILE_MS = 10000;
const STATUSES = ['Pending', 'Completed', 'Failed', 'Cancelled'];

// ---------- small DOM helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return s;
  return d.toISOString().replace('T', ' ').replace('Z', '').slice(0, 23);
}

function fmtDuration(ms) {
  if (ms < 1) return (ms * 1000).toFixed(0) + ' µs';
  if (ms < 1000) return ms.toFixed(1) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
  if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min';
  return (ms / 3600000).toFixed(1) + ' h';
}

// Difference of two RFC 3339 times in ms, to the microsecond (Date keeps
// only milliseconds, so the digits after them are added back).
function diffMs(a, b) {
  const micro = (s) => { const m = /\.(\d+)/.exec(s); return m ? Number(m[1].padEnd(9, '0').slice(3, 9)) / 1e6 : 0; };
  return (new Date(b) - new Date(a)) + (micro(b) - micro(a));
}

function traceID(traceparent) {
  const parts = (traceparent || '').split('-');
  return parts.length === 4 ? parts[1] : '';
}

function statusBadge(s) {
  return h('span', { class: 'badge badge-' + String(s || '').toLowerCase() }, s || '—');
}

// ---------- the API ----------

class APIError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || ('HTTP ' + status));
    this.status = status;
    this.problem = problem || {};
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

let tokenWaiters = null;

// askToken shows the token form once and resolves when a token is entered.
function askToken(why) {
  if (!tokenWaiters) {
    tokenWaiters = [];
    const panel = document.getElementById('token-panel');
    document.getElementById('token-why').textContent = why;
    panel.hidden = false;
    document.getElementById('token-input').focus();
  }
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

function setupToken() {
  const form = document.getElementById('token-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('token-input');
    const v = input.value.trim();
    if (!v) return;
    sessionStorage.setItem(TOKEN_KEY, v);
    input.value = '';
    document.getElementById('token-panel').hidden = true;
    document.getElementById('forget-token').hidden = false;
    const ws = tokenWaiters || [];
    tokenWaiters = null;
    ws.forEach((r) => r());
    const main = document.getElementById('main');
    main.focus();
  });
  const forget = document.getElementById('forget-token');
  forget.hidden = !token();
  forget.addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    forget.hidden = true;
    route();
  });
}

// api calls the API and returns {status, headers, body}; a non-2xx answer
// throws an APIError carrying the problem. A 401 asks for the token once
// and retries.
async function api(path, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = Object.assign({ Accept: 'application/json' }, opts.headers || {});
    if (token()) headers.Authorization = 'Bearer ' + token();
    if (opts.json !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method: opts.method || 'GET', headers, signal: opts.signal, cache: 'no-store',
      body: opts.json !== undefined ? JSON.stringify(opts.json) : undefined,
    });
    if (res.status === 401 && attempt < 3) {
      sessionStorage.removeItem(TOKEN_KEY);
      await askToken(attempt === 0 ? 'This ledger needs a bearer token. It is kept in this tab only (sessionStorage) and sent as an Authorization header.'
        : 'That token was refused (401). Enter the ledger\'s API token.');
      continue;
    }
    const ctype = res.headers.get('Content-Type') || '';
    let body = null;
    if (opts.raw) body = await res.text();
    else if (ctype.includes('json')) body = await res.json().catch(() => null);
    else body = await res.text();
    if (!res.ok) throw new APIError(res.status, typeof body === 'object' ? body : { detail: body });
    return { status: res.status, headers: res.headers, body };
  }
}

// ---------- the change feed (fetch + stream reader: EventSource cannot send
// an Authorization header) ----------

// follow calls onEvent for each event of GET /feed from the head on, and
// onMode('live' | 'polling' | 'reconnecting'). When the feed answers 501
// (the AWS backend) it calls onPoll every POLL_MS instead. It stops when
// signal aborts.
function follow(signal, onEvent, onMode, onPoll) {
  let last = '';
  const run = async () => {
    while (!signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream' };
        if (token()) headers.Authorization = 'Bearer ' + token();
        if (last) headers['Last-Event-ID'] = last;
        const res = await fetch(last ? '/feed' : '/feed?from=now', { headers, signal, cache: 'no-store' });
        if (res.status === 501 || res.status === 404) {
          onMode('polling');
          while (!signal.aborted) {
            await sleep(POLL_MS, signal);
            if (!signal.aborted) await onPoll();
          }
          return;
        }
        if (res.status === 401) {
          await askToken('This ledger needs a bearer token. It is kept in this tab only (sessionStorage) and sent as an Authorization header.');
          continue;
        }
        if (!res.ok) throw new Error('feed: HTTP ' + res.status);
        onMode('live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let id = '', data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('id:')) id = line.slice(3).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trim();
            }
            if (id) last = id;
            if (data) {
              try { onEvent(JSON.parse(data)); } catch (e) { /* not an event */ }
            }
          }
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      onMode('reconnecting');
      await sleep(1000, signal);
    }
  };
  run();
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// ---------- routing ----------

let pageAbort = new AbortController();

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/orders';
  const [p, q] = raw.split('?');
  return { parts: p.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q || '') };
}

function route() {
  pageAbort.abort();
  pageAbort = new AbortController();
  const { parts, query } = parseHash();
  const main = document.getElementById('main');
  main.replaceChildren();
  let page = parts[0] || 'orders';
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  const signal = pageAbort.signal;
  const pages = {
    orders: () => (parts[1] ? orderPage(main, parts[1], signal) : ordersPage(main, query, signal)),
    dlq: () => dlqPage(main, signal),
    projections: () => projectionsPage(main, signal),
    health: () => healthPage(main, signal),
  };
  if (!pages[page]) { page = 'orders'; }
  pages[page]().catch((e) => {
    if (signal.aborted) return;
    main.append(errorBox(e));
  });
}

function heading(main, text) {
  const el = h('h1', { tabindex: '-1' }, text);
  main.append(el);
  document.title = text + ' · orderledger console';
  el.focus({ preventScroll: true });
  return el;
}

function errorBox(e) {
  const status = e instanceof APIError ? e.status + ' ' + (e.problem.title || '') + ': ' : '';
  return h('p', { class: 'error', role: 'alert' }, status + e.message);
}

function tableWrap(label, table) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label }, table);
}

// ---------- Orders ----------

async function ordersPage(main, query, signal) {
  heading(main, 'Orders');
  const status = query.get('status') || '';
  const customer = query.get('customer') || '';
  const limit = Math.min(Math.max(Number(query.get('limit')) || 20, 1), 100);
  const form = h('form', { class: 'filters', 'aria-label': 'Filter orders' },
    h('div', { class: 'field' }, h('label', { for: 'f-status' }, 'Status'),
      h('select', { id: 'f-status', name: 'status' },
        h('option', { value: '' }, 'Any'),
        STATUSES.map((s) => h('option', { value: s, selected: s === status }, s)))),
    h('div', { class: 'field' }, h('label', { for: 'f-customer' }, 'Customer'),
      h('input', { id: 'f-customer', name: 'customer', type: 'search', value: customer, autocomplete: 'off' })),
    h('div', { class: 'field' }, h('button', { type: 'submit' }, 'Apply')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    const fd = new FormData(form);
    if (fd.get('status')) q.set('status', fd.get('status'));
    if (fd.get('customer')) q.set('customer', fd.get('customer'));
    if (query.get('limit')) q.set('limit', query.get('limit'));
    location.hash = '#/orders' + (q.toString() ? '?' + q : '');
  });
  const mode = h('p', { id: 'live-mode', class: 'muted', role: 'status' }, 'Connecting to the change feed…');
  const table = h('table', { id: 'orders-table' },
    h('caption', {}, 'Orders, newest first'),
    h('thead', {}, h('tr', {}, ['Order', 'Customer', 'Product', 'Qty', 'Status', 'Version', 'Placed (UTC)'].map((c) => h('th', { scope: 'col' }, c)))));
  const tbody = h('tbody');
  table.append(tbody);
  const prev = h('button', { type: 'button', id: 'prev-page', disabled: true }, 'Previous page');
  const next = h('button', { type: 'button', id: 'next-page', disabled: true }, 'Next page');
  const pageInfo = h('span', { class: 'muted', 'aria-live': 'polite' });
  main.append(form, mode, tableWrap('Orders table', table), h('div', { class: 'pager' }, prev, pageInfo, next));

  const cursors = ['']; // cursors[i] fetches page i
  let pageNo = 0;
  let nextCursor = null;
  let loading = null;

  const load = async () => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (status) q.set('status', status);
    if (customer) q.set('customer', customer);
    if (cursors[pageNo]) q.set('cursor', cursors[pageNo]);
    const res = await api('/orders?' + q, { signal });
    nextCursor = res.body.next_cursor;
    const rows = res.body.items.map((o) => h('tr', { 'data-order-id': o.order_id, 'data-version': o.version },
      h('td', {}, h('a', { href: '#/orders/' + encodeURIComponent(o.order_id), class: 'mono' }, o.order_id)),
      h('td', {}, o.customer_name), h('td', {}, o.product_name), h('td', { class: 'num' }, o.quantity),
      h('td', { 'data-status': o.status }, statusBadge(o.status)), h('td', { class: 'num' }, o.version),
      h('td', { class: 'mono' }, fmtTime(o.created_at))));
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: '7', class: 'muted' }, 'No orders.')));
    tbody.replaceChildren(...rows);
    prev.disabled = pageNo === 0;
    next.disabled = !nextCursor;
    pageInfo.textContent = 'Page ' + (pageNo + 1);
  };
  // refresh coalesces bursts of feed events into one reload.
  let pending = false;
  const refresh = async () => {
    if (loading) { pending = true; return; }
    table.dataset.loads = String(Number(table.dataset.loads || 0) + 1);
    loading = load().catch((e) => { if (!signal.aborted) mode.textContent = 'Reload failed: ' + e.message; });
    await loading;
    loading = null;
    table.dataset.loaded = String(Number(table.dataset.loaded || 0) + 1);
    if (pending && !signal.aborted) { pending = false; setTimeout(refresh, 150); }
    else if (!signal.aborted) recheck();
  };
  // A feed event is committed to the log before the read model, which the
  // listing reads, has applied it. So an event is remembered until the
  // listing shows its order at that version (or the order is not on this
  // page), re-reading a little later while it does not; and a burst is
  // followed by trailing reloads, for new orders the page cannot yet see.
  const want = new Map(); // order ID -> {version, tries}
  let recheckTimer = null;
  const recheck = () => {
    if (recheckTimer || want.size === 0) return;
    const rows = new Map([...tbody.querySelectorAll('tr[data-order-id]')].map((tr) => [tr.dataset.orderId, Number(tr.dataset.version)]));
    let behind = false;
    for (const [id, w] of want) {
      if (!rows.has(id) ? w.tries >= 8 : rows.get(id) >= w.version || w.tries >= 80) want.delete(id);
      else { w.tries++; behind = true; }
    }
    if (behind) recheckTimer = setTimeout(() => { recheckTimer = null; refresh(); }, 250);
  };
  let trailing = [];
  const onEvent = (ev) => {
    table.dataset.events = String(Number(table.dataset.events || 0) + 1);
    table.dataset.lastEvent = ev.order_id + '@' + ev.version;
    const w = want.get(ev.order_id);
    want.set(ev.order_id, { version: Math.max(ev.version, w ? w.version : 0), tries: 0 });
    refresh();
    trailing.forEach(clearTimeout);
    trailing = [600, 2000].map((ms) => setTimeout(() => { if (!signal.aborted) refresh(); }, ms));
  };
  prev.addEventListener('click', () => { if (pageNo > 0) { pageNo--; refresh(); } });
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    cursors[pageNo + 1] = nextCursor;
    pageNo++;
    refresh();
  });
  await refresh();
  // The feed starts at its head when it opens; what was committed just
  // before may not be in the read model yet, so the page reloads once the
  // feed is open and twice more after it, and every RECONCILE_MS while live
  // as a backstop.
  let reconcile = null;
  signal.addEventListener('abort', () => clearInterval(reconcile));
  follow(signal, onEvent, (m) => {
    if (m === 'live') {
      refresh();
      trailing.forEach(clearTimeout);
      trailing = [1000, 3000].map((ms) => setTimeout(() => { if (!signal.aborted) refresh(); }, ms));
      clearInterval(reconcile);
      reconcile = setInterval(() => { if (!signal.aborted) refresh(); }, RECONCILE_MS);
    }
    mode.dataset.mode = m;
    mode.textContent = {
      live: 'Live: following the change feed (GET /feed).',
      polling: 'This backend has no change feed (GET /feed answers 501): refreshing every ' + POLL_MS / 1000 + ' s.',
      reconnecting: 'Change feed interrupted: reconnecting…',
    }[m];
  }, refresh);
}

// ---------- One order ----------

const VIEW_FIELDS = [
  ['order_id', 'Order ID'], ['status', 'Status'], ['version', 'Version'], ['customer_name', 'Customer'],
  ['product_name', 'Product'], ['quantity', 'Quantity'], ['amount', 'Amount (minor units)'],
  ['payment_id', 'Payment ID'], ['reservation_id', 'Reservation ID'], ['failure_reason', 'Failure reason'],
  ['created_at', 'Placed (UTC)'], ['updated_at', 'Updated (UTC)'],
];

function viewList(v) {
  return h('dl', { class: 'view' }, VIEW_FIELDS.filter(([k]) => v[k] !== undefined && v[k] !== '' && v[k] !== null).map(([k, label]) => [
    h('dt', {}, label),
    h('dd', { 'data-field': k }, k === 'status' ? statusBadge(v[k]) : (k.endsWith('_at') ? fmtTime(v[k]) : String(v[k]))),
  ]));
}

function dataText(data) {
  if (!data || typeof data !== 'object') return '';
  return Object.entries(data).map(([k, v]) => k + '=' + (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v))).join(' ');
}

async function orderPage(main, id, signal) {
  heading(main, 'Order ' + id);
  main.append(h('p', {}, h('a', { href: '#/orders' }, '← All orders')));
  const viewBox = h('section', { class: 'card', 'aria-labelledby': 'view-title' });
  const asOfBox = h('section', { class: 'card', 'aria-labelledby': 'asof-title' });
  const cancelBox = h('section', { class: 'card', 'aria-labelledby': 'cancel-title' });
  const timelineBox = h('section', { class: 'card wide', 'aria-labelledby': 'timeline-title' });
  const moved = h('div', { id: 'order-moved', class: 'notice', role: 'status', hidden: true });
  main.append(moved, h('div', { class: 'grid' }, viewBox, asOfBox, cancelBox), timelineBox);

  let etag = '';
  let latest = 0;
  const showView = (v, label) => {
    viewBox.replaceChildren(h('h2', { id: 'view-title' }, label), viewList(v));
  };
  const loadCurrent = async () => {
    const res = await api('/orders/' + encodeURIComponent(id) + '?consistent=true', { signal });
    etag = res.headers.get('ETag') || '';
    latest = res.body.version;
    showView(res.body, 'Current view (version ' + res.body.version + ', ETag ' + etag + ')');
    cancelBtn.disabled = res.body.status !== 'Pending';
    versionInput.max = String(latest);
    if (!versionInput.value) versionInput.value = String(latest);
    if (Number(moved.dataset.version || 0) <= latest) moved.hidden = true;
    return res.body;
  };
  const loadTimeline = async () => {
    const res = await api('/orders/' + encodeURIComponent(id) + '/events', { signal });
    timelineBox.replaceChildren(h('h2', { id: 'timeline-title' }, 'Timeline (' + res.body.events.length + ' events)'), timeline(res.body.events));
  };

  // As of
  const versionInput = h('input', { id: 'asof-version', type: 'number', min: '1', inputmode: 'numeric' });
  const timeInput = h('input', { id: 'asof-time', type: 'text', placeholder: '2026-01-02T15:04:05Z', autocomplete: 'off' });
  const asOfOut = h('p', { id: 'asof-out', role: 'status', class: 'muted' });
  const asOfForm = h('form', { 'aria-labelledby': 'asof-title' },
    h('div', { class: 'field' }, h('label', { for: 'asof-version' }, 'As of version'), versionInput),
    h('div', { class: 'field' }, h('label', { for: 'asof-time' }, 'or as of time (RFC 3339, UTC)'), timeInput),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'asof-show' }, 'Show'),
      h('button', { type: 'button', id: 'asof-latest', onclick: () => { versionInput.value = ''; timeInput.value = ''; asOfOut.textContent = ''; loadCurrent().catch(fail); } }, 'Latest')));
  asOfForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (timeInput.value.trim()) q.set('as_of', timeInput.value.trim());
    else q.set('version', versionInput.value);
    try {
      const res = await api('/orders/' + encodeURIComponent(id) + '?' + q, { signal });
      const label = q.has('as_of') ? 'As of ' + q.get('as_of') + ' (version ' + res.body.version + ')' : 'As of version ' + res.body.version;
      showView(res.body, label);
      asOfOut.textContent = 'Showing the order ' + label.toLowerCase() + '.';
    } catch (err) {
      asOfOut.textContent = err instanceof APIError ? err.status + ': ' + err.message : err.message;
    }
  });
  asOfBox.append(h('h2', { id: 'asof-title' }, 'As of'), asOfForm, asOfOut);

  // Cancel
  const reason = h('input', { id: 'cancel-reason', type: 'text', value: 'cancelled from the console', autocomplete: 'off' });
  const cancelBtn = h('button', { type: 'submit', id: 'cancel-button', class: 'danger' }, 'Cancel order');
  const cancelOut = h('p', { id: 'cancel-result', role: 'status' });
  const cancelForm = h('form', { 'aria-labelledby': 'cancel-title' },
    h('div', { class: 'field' }, h('label', { for: 'cancel-reason' }, 'Reason'), reason),
    h('p', { class: 'muted' }, 'Sends If-Match with the ETag of the current view: if the order moved since, the API answers 412.'),
    h('div', { class: 'row' }, cancelBtn));
  cancelForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    cancelOut.className = '';
    cancelOut.textContent = 'Cancelling with If-Match: ' + etag + '…';
    try {
      const res = await api('/orders/' + encodeURIComponent(id) + '/cancel', {
        method: 'POST', headers: { 'If-Match': etag }, json: { reason: reason.value }, signal,
      });
      cancelOut.className = 'ok';
      cancelOut.textContent = res.status + ' OK: the order is ' + res.body.status + ' (version ' + res.body.version + ').';
      cancelOut.dataset.status = String(res.status);
      await Promise.all([loadCurrent(), loadTimeline()]);
    } catch (err) {
      cancelOut.className = 'error';
      cancelOut.dataset.status = String(err.status || '');
      const what = { 412: '412 Precondition Failed: the order changed since this page loaded (stale ETag ' + etag + ')',
        409: '409 Conflict: the order cannot be cancelled' }[err.status] || ((err.status || '') + ' error');
      cancelOut.textContent = what + '. ' + err.message;
      await loadCurrent().catch(() => {});
    }
  });
  cancelBox.append(h('h2', { id: 'cancel-title' }, 'Cancel'), cancelForm, cancelOut);

  const fail = (e) => { if (!signal.aborted) main.append(errorBox(e)); };
  await Promise.all([loadCurrent(), loadTimeline()]);
  // Follow this order's stream when there is a feed; poll otherwise. A
  // change does not replace what the operator is looking at (nor the ETag
  // a Cancel would send): it is announced, with a button to reload.
  const announce = (version) => {
    if (version <= latest) return;
    moved.hidden = false;
    moved.dataset.version = String(version);
    moved.replaceChildren(h('span', {}, 'This order has moved to version ' + version + ' since this view was loaded. '),
      h('button', { type: 'button', id: 'order-reload', onclick: async () => {
        await Promise.all([loadCurrent(), loadTimeline()]).catch(fail);
        moved.hidden = true;
      } }, 'Reload the order'));
  };
  // The feed starts at its head: what happened between the load and its
  // opening is read from the order's events once it is open.
  const check = async () => {
    const res = await api('/orders/' + encodeURIComponent(id) + '/events', { signal }).catch(() => null);
    if (res) announce(res.body.events.length ? res.body.events[res.body.events.length - 1].version : 0);
  };
  follow(signal, (ev) => { if (ev.order_id === id) announce(ev.version); }, (m) => { if (m === 'live') check(); }, check);
}

// timeline draws the events, with the gap since the previous one as a bar
// whose length is to scale (the longest gap fills the track).
function timeline(events) {
  const gaps = events.map((e, i) => (i === 0 ? 0 : Math.max(0, diffMs(events[i - 1].occurred_at, e.occurred_at))));
  const maxGap = Math.max(...gaps, 0);
  const total = events.length > 1 ? diffMs(events[0].occurred_at, events[events.length - 1].occurred_at) : 0;
  const ol = h('ol', { class: 'timeline', id: 'timeline' });
  events.forEach((e, i) => {
    const md = e.metadata || {};
    const ids = [
      ['request', md.request_id], ['correlation', md.correlation_id], ['causation', md.causation_id], ['trace', traceID(md.traceparent)],
    ];
    const pct = maxGap > 0 ? (gaps[i] / maxGap) * 100 : 0;
    const gap = i === 0 ? null : h('div', { class: 'gap' },
      h('span', { class: 'gap-track', 'aria-hidden': 'true' }, h('span', { class: 'gap-bar', 'data-pct': pct.toFixed(1) })),
      h('span', { class: 'gap-label' }, '+' + fmtDuration(gaps[i]) + ' after version ' + events[i - 1].version));
    if (gap) gap.querySelector('.gap-bar').style.width = Math.max(pct, 0.5) + '%';
    ol.append(h('li', { class: 'event', 'data-version': e.version, 'data-type': e.type },
      gap,
      h('div', { class: 'event-head' },
        h('span', { class: 'version' }, 'v' + e.version),
        h('strong', { class: 'type' }, e.type),
        h('time', { datetime: e.occurred_at, class: 'mono' }, fmtTime(e.occurred_at))),
      h('div', { class: 'data mono' }, dataText(e.data) || '—'),
      h('dl', { class: 'ids' }, ids.filter(([, v]) => v).map(([k, v]) => [h('dt', {}, k), h('dd', { class: 'mono' }, v)]))));
  });
  return h('div', {}, h('p', { class: 'muted' }, 'From first to last event: ' + fmtDuration(total) + '. Bars show each gap to scale (the longest fills the track).'), ol);
}

// ---------- Dead letters ----------

async function dlqPage(main, signal) {
  heading(main, 'Dead letters');
  const out = h('div', { id: 'dlq-report', role: 'status' });
  const listBox = h('div');
  const detail = h('section', { class: 'card', id: 'dlq-detail', hidden: true, 'aria-labelledby': 'dlq-detail-title' });
  const dry = h('button', { type: 'button', id: 'dlq-dry-run' }, 'Redrive: dry run');
  const real = h('button', { type: 'button', id: 'dlq-redrive', class: 'danger', disabled: true }, 'Redrive now');
  const reload = h('button', { type: 'button', id: 'dlq-reload' }, 'Reload');
  main.append(h('p', { class: 'muted' }, 'Messages that could not be processed after their tries. A redrive re-reads each order: settled ones are deleted, owed work is sent back. Look at the dry run first.'),
    h('div', { class: 'row' }, reload, dry, real), out, listBox, detail);

  const load = async () => {
    const res = await api('/admin/dlq', { signal });
    const items = res.body.items;
    const table = h('table', { id: 'dlq-table' }, h('caption', {}, res.body.count + ' dead letter' + (res.body.count === 1 ? '' : 's')),
      h('thead', {}, h('tr', {}, ['Message', 'Order', 'Event', 'Attempts', 'Last error', 'Dead at (UTC)', 'Order status', ''].map((c) => h('th', { scope: 'col' }, c || h('span', { class: 'sr-only' }, 'Actions'))))),
      h('tbody', {}, items.length ? items.map((d) => h('tr', { 'data-id': d.id },
        h('td', { class: 'mono' }, d.id),
        h('td', {}, d.order_id ? h('a', { href: '#/orders/' + encodeURIComponent(d.order_id), class: 'mono' }, d.order_id) : '—'),
        h('td', {}, d.event_type || ''), h('td', { class: 'num' }, d.attempts), h('td', {}, d.last_error || ''),
        h('td', { class: 'mono' }, fmtTime(d.dead_at)), h('td', {}, d.order_status ? statusBadge(d.order_status) : (d.problem || '—')),
        h('td', {}, h('button', { type: 'button', class: 'small', 'aria-label': 'Inspect ' + d.id, onclick: () => inspect(d) }, 'Inspect'))))
        : [h('tr', {}, h('td', { colspan: '8', class: 'muted' }, 'The dead-letter queue is empty.'))]));
    listBox.replaceChildren(tableWrap('Dead letters table', table));
  };
  const inspect = (d) => {
    detail.hidden = false;
    detail.replaceChildren(h('h2', { id: 'dlq-detail-title', tabindex: '-1' }, 'Dead letter ' + d.id), h('pre', { class: 'json', tabindex: '0', 'aria-label': 'Dead letter ' + d.id + ' as JSON' }, JSON.stringify(d, null, 2)));
    detail.querySelector('h2').focus();
  };
  const report = (r) => h('div', { class: 'card' },
    h('h2', {}, r.dry_run ? 'Dry run: nothing was changed' : 'Redrive done'),
    h('p', { 'data-redriven': r.redriven }, (r.dry_run ? 'Would redrive ' : 'Redriven: ') + r.redriven + ', ' + (r.dry_run ? 'would delete ' : 'deleted: ') + r.deleted + ', kept: ' + r.kept + '.'),
    r.items && r.items.length ? h('ul', {}, r.items.map((it) => h('li', {}, h('span', { class: 'mono' }, it.id), ' ', it.order_id ? '(order ' + it.order_id + ')' : '', ': ', h('strong', {}, it.action), it.reason ? ' — ' + it.reason : ''))) : null);
  dry.addEventListener('click', async () => {
    out.replaceChildren(h('p', {}, 'Dry run…'));
    try {
      const res = await api('/admin/dlq/redrive?dry_run=true', { method: 'POST', signal });
      out.replaceChildren(report(res.body));
      real.disabled = false;
      real.focus();
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  real.addEventListener('click', async () => {
    real.disabled = true;
    out.replaceChildren(h('p', {}, 'Redriving…'));
    try {
      const res = await api('/admin/dlq/redrive', { method: 'POST', signal });
      out.replaceChildren(report(res.body));
      await load();
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  reload.addEventListener('click', () => load().catch((e) => out.replaceChildren(errorBox(e))));
  await load();
}

// ---------- Projections ----------

async function projectionsPage(main, signal) {
  heading(main, 'Projections');
  const start = h('button', { type: 'button', id: 'rebuild-start' }, 'Start rebuild');
  const bar = h('progress', { id: 'rebuild-progress', max: '100', value: '0', 'aria-labelledby': 'rebuild-label' });
  const label = h('p', { id: 'rebuild-label' }, 'Rebuild: not started.');
  const msg = h('p', { id: 'rebuild-msg', role: 'status' });
  const lagBox = h('section', { class: 'card', 'aria-labelledby': 'lag-title' }, h('h2', { id: 'lag-title' }, 'Lag'));
  main.append(h('section', { class: 'card', 'aria-labelledby': 'rebuild-title' },
    h('h2', { id: 'rebuild-title' }, 'Read-model rebuild'),
    h('p', { class: 'muted' }, 'Rebuilds the read model from the event log; the current one keeps serving until the new one is ready.'),
    h('div', { class: 'row' }, start), bar, label, msg), lagBox);

  const show = (st) => {
    const pct = st.events_total > 0 ? Math.floor((st.events_done / st.events_total) * 100) : (st.finished_at ? 100 : 0);
    const done = !st.running && st.finished_at && !st.error;
    const p = done ? 100 : pct;
    bar.value = p;
    bar.textContent = p + '%';
    label.dataset.pct = String(p);
    label.textContent = st.started_at
      ? (st.running ? 'Running: ' : st.error ? 'Failed: ' : 'Finished: ') + p + '% (' + st.events_done + ' of ' + st.events_total + ' events' +
        (st.eta_seconds ? ', about ' + Math.ceil(st.eta_seconds) + ' s left' : '') + ')' + (st.finished_at ? ', finished ' + fmtTime(st.finished_at) : '')
      : 'Rebuild: none since the server started.';
    if (st.error) msg.textContent = 'Error: ' + st.error;
    start.disabled = !!st.running;
    return st.running;
  };
  const poll = async () => {
    while (!signal.aborted) {
      const res = await api('/admin/projections/rebuild', { signal });
      if (!show(res.body)) return;
      await sleep(300, signal);
    }
  };
  start.addEventListener('click', async () => {
    msg.textContent = 'Starting…';
    try {
      const res = await api('/admin/projections/rebuild', { method: 'POST', signal });
      msg.textContent = res.status + ' Accepted: rebuild started.';
      show(res.body);
      await poll();
    } catch (e) {
      msg.textContent = e instanceof APIError && e.status === 409 ? '409 Conflict: a rebuild is already running.' : 'Error: ' + e.message;
      poll().catch(() => {});
    }
  });
  try {
    const res = await api('/admin/projections/rebuild', { signal });
    if (show(res.body)) poll().catch(() => {});
  } catch (e) { msg.textContent = e.message; }

  const lag = async () => {
    const rows = [];
    const rd = await readiness(signal);
    for (const c of rd.checks) {
      if (c.name === 'projector' || c.name === 'pipeline' || /lag|stream|publisher|projector/i.test(c.name)) rows.push([c.name, c.ok ? 'ok' : 'not ok', c.detail || '']);
    }
    const m = await metrics(signal).catch(() => null);
    if (m) {
      const head = m.one('ledger_feed_head_position');
      for (const s of m.all('ledger_feed_consumer_position')) {
        if (head !== null) rows.push([(s.labels.consumer || 'consumer') + ' (metrics)', 'lag', String(head - s.value) + ' events behind']);
      }
    }
    lagBox.replaceChildren(h('h2', { id: 'lag-title' }, 'Lag'), tableWrap('Lag table', h('table', { id: 'lag-table' },
      h('caption', {}, 'Projector and publisher, from /readyz and /metrics'),
      h('thead', {}, h('tr', {}, ['Consumer', 'State', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))))));
  };
  (async () => {
    while (!signal.aborted) {
      await lag().catch(() => {});
      await sleep(POLL_MS, signal);
    }
  })();
}

// readiness returns /readyz's checks whether it answers 200 or 503.
async function readiness(signal) {
  try {
    const res = await api('/readyz', { signal });
    return { ready: true, checks: res.body.checks || [] };
  } catch (e) {
    if (e instanceof APIError && e.status === 503) return { ready: false, checks: e.problem.checks || [], detail: e.problem.detail };
    throw e;
  }
}

// metrics fetches and parses the Prometheus text exposition of /metrics.
async function metrics(signal) {
  const res = await api('/metrics', { signal, raw: true, headers: { Accept: 'text/plain' } });
  const samples = [];
  for (const line of res.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return {
    at: performance.now(),
    samples,
    all: (name) => samples.filter((s) => s.name === name),
    one: (name) => { const s = samples.find((x) => x.name === name); return s ? s.value : null; },
    sum: (name, pred) => samples.filter((s) => s.name === name && (!pred || pred(s.labels))).reduce((a, s) => a + s.value, 0),
  };
}

// ---------- Health ----------

async function healthPage(main, signal) {
  heading(main, 'Health');
  const ready = h('section', { class: 'card', 'aria-labelledby': 'ready-title' }, h('h2', { id: 'ready-title' }, 'Readiness'));
  const rates = h('section', { class: 'card', 'aria-labelledby': 'rates-title' }, h('h2', { id: 'rates-title' }, 'Rates'));
  main.append(h('div', { class: 'grid' }, ready, rates));
  let prev = null;
  const tick = async () => {
    const rd = await readiness(signal);
    ready.replaceChildren(h('h2', { id: 'ready-title' }, 'Readiness'),
      h('p', { id: 'ready-state' }, statusBadge(rd.ready ? 'Ready' : 'Not ready'), rd.detail ? ' ' + rd.detail : ''),
      tableWrap('Readiness checks', h('table', { id: 'ready-table' }, h('caption', {}, 'GET /readyz checks'),
        h('thead', {}, h('tr', {}, ['Check', 'OK', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rd.checks.map((c) => h('tr', {}, h('td', {}, c.name), h('td', {}, c.ok ? 'yes' : 'no'), h('td', {}, c.detail || '')))))));
    let m;
    try { m = await metrics(signal); } catch (e) {
      rates.replaceChildren(h('h2', { id: 'rates-title' }, 'Rates'), h('p', { class: 'muted' }, 'No metrics: ' + e.message));
      return;
    }
    const rows = [];
    const per = (name, pred) => {
      if (!prev) return '…';
      const dt = (m.at - prev.at) / 1000;
      return dt > 0 ? ((m.sum(name, pred) - prev.sum(name, pred)) / dt).toFixed(2) + ' /s' : '…';
    };
    rows.push(['HTTP requests', per('ledger_http_requests_total'), String(m.sum('ledger_http_requests_total'))]);
    rows.push(['HTTP 5xx', per('ledger_http_requests_total', (l) => /^5/.test(l.code || l.status || '')), String(m.sum('ledger_http_requests_total', (l) => /^5/.test(l.code || l.status || '')))]);
    const types = [...new Set(m.all('ledger_events_appended_total').map((s) => s.labels.type || s.labels.event_type || ''))].sort();
    for (const t of types) {
      const pred = (l) => (l.type || l.event_type || '') === t;
      rows.push(['Events appended: ' + (t || 'all'), per('ledger_events_appended_total', pred), String(m.sum('ledger_events_appended_total', pred))]);
    }
    const dlq = m.sum('ledger_queue_messages', (l) => /dlq/.test(l.queue || ''));
    rows.push(['Dead letters (messages)', '', String(dlq)]);
    prev = m;
    rates.replaceChildren(h('h2', { id: 'rates-title' }, 'Rates'), tableWrap('Rates table', h('table', { id: 'rates-table' },
      h('caption', {}, 'From /metrics, over the last ' + POLL_MS / 1000 + ' s'),
      h('thead', {}, h('tr', {}, ['Metric', 'Rate', 'Total'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))))));
  };
  await tick();
  (async () => {
    while (!signal.aborted) {
      await sleep(POLL_MS, signal);
      if (!signal.aborted) await tick().catch(() => {});
    }
  })();
}

// ---------- start ----------

window.addEventListener('hashchange', route);
document.addEventListener('DOMContentLoaded', () => {
  setupToken();
  route();
});
