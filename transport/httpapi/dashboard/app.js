// The operator's dashboard: polls the admin API (/admin/api/...) with the
// admin token the operator types in, and draws what it answers. Plain
// browser JavaScript with no dependency, so the server ships it as it is.
// Everything from the server is put in the page as text (textContent),
// never as HTML: user ids and platforms are chosen by clients.
'use strict';

(function () {
  const TOKEN_KEY = 'imserver-admin-token';
  const POLL_MS = 2000;
  const HISTORY_LEN = 300; // points the server keeps (AdminHistoryLen)

  const $ = (id) => document.getElementById(id);

  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let pollTimer = 0;
  let running = false; // logged in and polling
  let polling = false; // a poll is waiting for the server
  let pollAgain = false; // poll again as soon as it is done
  let history = []; // points of /admin/api/history, oldest first
  let intervalMs = 2000; // the history's sampling interval
  let sessionsKey = '';

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // api calls an admin route and returns its data, or throws an APIError
  // whose message is fit to show.
  async function api(method, path, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let rsp;
    try {
      rsp = await fetch(path, init);
    } catch (e) {
      throw new APIError(0, -1, 'the server did not answer (' + e.message + ')');
    }
    let env = null;
    try {
      env = await rsp.json();
    } catch (e) {
      env = null;
    }
    if (rsp.status === 401) {
      throw new APIError(401, 100, 'the server refused the admin token');
    }
    if (!env) {
      throw new APIError(rsp.status, -1, 'HTTP ' + rsp.status);
    }
    if (rsp.status !== 200 || env.code !== 0) {
      throw new APIError(rsp.status, env.code, env.message || 'HTTP ' + rsp.status);
    }
    return env.data;
  }

  // --- login ---

  function showLogin(message) {
    stop();
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('status').textContent = '';
    const err = $('login-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('token').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const typed = $('token').value.trim();
    if (!typed) {
      return;
    }
    token = typed;
    const button = $('login-form').querySelector('button');
    button.disabled = true;
    try {
      await api('GET', '/admin/api/stats');
    } catch (e) {
      token = '';
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(e.status === 401
        ? 'Wrong admin token: the server refused it (HTTP 401). Use the value of -admin-token (IM_ADMIN_TOKEN).'
        : 'Could not log in: ' + e.message);
      return;
    } finally {
      button.disabled = false;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    start();
  }

  // tokenRefused goes back to the login form when the server stops
  // accepting the token (it was changed and the server restarted).
  function tokenRefused() {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin('The server no longer accepts the admin token (HTTP 401). Log in again.');
  }

  function logout() {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin('');
  }

  // --- polling ---

  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    running = true;
    poll();
  }

  function stop() {
    running = false;
    clearTimeout(pollTimer);
    history = [];
    sessionsKey = '';
  }

  // poll reads the figures, the new history points and the sessions,
  // then schedules the next poll. One poll at a time, however slow the
  // server: a poll asked for while one runs (after a kick) runs when it
  // ends.
  async function poll() {
    if (polling) {
      pollAgain = true;
      return;
    }
    clearTimeout(pollTimer);
    if (!running) {
      return;
    }
    polling = true;
    try {
      await update();
    } finally {
      polling = false;
    }
    if (running) {
      if (pollAgain) {
        pollAgain = false;
        poll();
      } else {
        pollTimer = setTimeout(poll, POLL_MS);
      }
    }
  }

  async function update() {
    const since = history.length ? history[history.length - 1].t : 0;
    try {
      const [stats, hist, sessions] = await Promise.all([
        api('GET', '/admin/api/stats'),
        api('GET', '/admin/api/history?since=' + since),
        api('GET', '/admin/api/sessions?limit=1000'),
      ]);
      if (!running) {
        return;
      }
      intervalMs = hist.interval || intervalMs;
      addHistory(hist.points);
      renderFigures(stats);
      renderCharts();
      renderSessions(sessions);
      $('app-error').hidden = true;
      $('status').textContent = 'Updated ' + new Date().toLocaleTimeString() + ' · every ' + POLL_MS / 1000 + ' s';
    } catch (e) {
      if (e.status === 401) {
        tokenRefused();
        return;
      }
      const err = $('app-error');
      err.textContent = 'Could not update: ' + e.message;
      err.hidden = false;
    }
  }

  function addHistory(points) {
    for (const p of points) {
      if (!history.length || p.t > history[history.length - 1].t) {
        history.push(p);
      }
    }
    if (!history.length) {
      return;
    }
    const oldest = history[history.length - 1].t - HISTORY_LEN * intervalMs;
    while (history.length && history[0].t < oldest) {
      history.shift();
    }
  }

  // --- figures ---

  const num = (n) => Number(n).toLocaleString('en-US');
  const fixed = (n, digits) => Number(n).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

  function renderFigures(s) {
    const last = history.length ? history[history.length - 1] : null;
    $('fig-connections').textContent = num(s.Connections);
    $('fig-sessions').textContent = num(s.Sessions);
    $('fig-online').textContent = num(s.PresenceOnline);
    $('fig-stored').textContent = num(s.MessagesStored);
    $('fig-msgrate').textContent = last ? fixed(last.messagesPerSec, 1) : '–';
    $('fig-frames').textContent = num(s.FramesIn) + ' / ' + num(s.FramesOut);

    const meanCommit = s.Commits ? s.CommitTime / s.Commits / 1e6 : 0;
    const batch = s.CommitBatch && s.CommitBatch.Count ? s.CommitBatch.Sum / s.CommitBatch.Count : 0;
    const rows = [
      ['Commits', 'Commits', num(s.Commits)],
      ['MeanCommit', 'Mean commit time', fixed(meanCommit, 2) + ' ms'],
      ['MeanBatch', 'Mean batch size', fixed(batch, 1) + ' messages'],
      ['Duplicates', 'Duplicate sends', num(s.Duplicates)],
      ['SendsRefused', 'Sends refused', num(s.SendsRefused)],
      ['StorePanics', 'Store panics', num(s.StorePanics)],
      ['CorruptReads', 'Corrupt reads', num(s.CorruptReads)],
      ['SlowConsumers', 'Slow consumers closed', num(s.SlowConsumers)],
      ['AfterSendDropped', 'AfterSend dropped', num(s.AfterSendDropped)],
      ['Notifications', 'Notifications (errors, dropped)',
        num(s.Notifications) + ' (' + num(s.NotificationErrors) + ', ' + num(s.NotificationsDropped) + ')'],
      ['Signals', 'Signals limited / dropped', num(s.SignalsLimited) + ' / ' + num(s.SignalsDropped)],
      ['ReceiptsLimited', 'Receipts limited', num(s.ReceiptsLimited)],
      ['Presence', 'Presence subscriptions / watched', num(s.PresenceSubscriptions) + ' / ' + num(s.PresenceWatched)],
    ];
    const body = document.createElement('tbody');
    for (const [id, label, value] of rows) {
      const tr = document.createElement('tr');
      tr.dataset.figure = id;
      const th = document.createElement('td');
      th.textContent = label;
      const td = document.createElement('td');
      td.textContent = value;
      if ((id === 'StorePanics' || id === 'CorruptReads') && s[id] > 0) {
        td.className = 'error';
      }
      tr.append(th, td);
      body.append(tr);
    }
    $('store-figures').tBodies[0].replaceWith(body);
  }

  // --- charts ---

  const charts = [
    {
      id: 'conns',
      series: [
        { key: 'connections', label: 'connections', color: '#2563eb' },
        { key: 'sessions', label: 'sessions', color: '#17803d' },
        { key: 'onlineUsers', label: 'online users', color: '#d97706' },
      ],
      format: (v) => num(v),
    },
    {
      id: 'traffic',
      series: [
        { key: 'messagesPerSec', label: 'messages/s', color: '#2563eb' },
        { key: 'framesInPerSec', label: 'frames in/s', color: '#17803d' },
        { key: 'framesOutPerSec', label: 'frames out/s', color: '#d97706' },
        { key: 'commitsPerSec', label: 'commits/s', color: '#7c3aed' },
      ],
      format: (v) => fixed(v, 1),
    },
    {
      id: 'commits',
      series: [{ key: 'commitMillis', label: 'mean commit time (ms)', color: '#c0262d' }],
      format: (v) => fixed(v, 2),
    },
  ];

  // chartSpan is the time the charts' x axis spans, in milliseconds: the
  // history there is, from 60 intervals (2 minutes at 2 s) up to all the
  // server keeps, so that a server just started fills its charts too.
  function chartSpan(now) {
    const have = history.length ? now - history[0].t : 0;
    return Math.min(HISTORY_LEN * intervalMs, Math.max(60 * intervalMs, have));
  }

  function ago(ms) {
    const s = Math.round(ms / 1000);
    return s >= 120 ? '−' + Math.round(s / 60) + ' min' : '−' + s + ' s';
  }

  function renderCharts() {
    // The server's clock, not the browser's, which may be off.
    const now = history.length ? history[history.length - 1].t : Date.now();
    for (const c of charts) {
      drawChart($('chart-' + c.id), c, now);
      renderLegend($('legend-' + c.id), c);
    }
  }

  // niceMax rounds v up to 1, 2, 4 or 8 times a power of ten, which four
  // grid lines divide evenly.
  function niceMax(v) {
    if (!(v > 0)) {
      return 1;
    }
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 4, 8, 10]) {
      if (v <= m * p) {
        return m * p;
      }
    }
    return 10 * p;
  }

  function drawChart(canvas, chart, now) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width;
    const h = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);

    const left = 48, right = 8, top = 8, bottom = 20;
    const pw = w - left - right, ph = h - top - bottom;
    let max = 0;
    for (const p of history) {
      for (const s of chart.series) {
        max = Math.max(max, p[s.key]);
      }
    }
    max = niceMax(max);
    const span = chartSpan(now);
    const x = (t) => left + ((t - (now - span)) / span) * pw;
    const y = (v) => top + ph - (v / max) * ph;

    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#66707c';
    g.strokeStyle = '#e5e9ee';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath();
      g.moveTo(left, yy);
      g.lineTo(left + pw, yy);
      g.stroke();
      g.fillText(chart.format(v), left - 6, yy);
    }
    g.textBaseline = 'top';
    g.textAlign = 'left';
    g.fillText(ago(span), left, top + ph + 5);
    g.textAlign = 'center';
    g.fillText(ago(span / 2), left + pw / 2, top + ph + 5);
    g.textAlign = 'right';
    g.fillText('now', left + pw, top + ph + 5);

    g.lineWidth = 2;
    g.lineJoin = 'round';
    for (const s of chart.series) {
      g.strokeStyle = s.color;
      g.fillStyle = s.color;
      const pts = history.filter((p) => p.t >= now - span);
      if (pts.length === 1) {
        g.beginPath();
        g.arc(x(pts[0].t), y(pts[0][s.key]), 2.5, 0, 2 * Math.PI);
        g.fill();
        continue;
      }
      g.beginPath();
      pts.forEach((p, i) => {
        if (i === 0) {
          g.moveTo(x(p.t), y(p[s.key]));
        } else {
          g.lineTo(x(p.t), y(p[s.key]));
        }
      });
      g.stroke();
    }
    // What is drawn, for tests and for anyone inspecting the page.
    const last = history.length ? history[history.length - 1] : null;
    canvas.dataset.points = String(history.length);
    canvas.dataset.max = String(max);
    canvas.dataset.last = last ? JSON.stringify(chart.series.map((s) => last[s.key])) : '';
  }

  function renderLegend(el, chart) {
    const last = history.length ? history[history.length - 1] : null;
    const items = chart.series.map((s) => {
      const span = document.createElement('span');
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = s.color;
      const value = document.createElement('span');
      value.className = 'last';
      value.textContent = last ? chart.format(last[s.key]) : '–';
      span.append(sw, s.label, value);
      return span;
    });
    el.replaceChildren(...items);
  }

  // --- sessions ---

  function renderSessions(page) {
    const list = page.sessions;
    const key = JSON.stringify(list);
    const more = $('sessions-more');
    more.hidden = !page.next;
    more.textContent = page.next ? 'Showing the first ' + list.length + ' sessions.' : '';
    if (key === sessionsKey) {
      return; // unchanged: leave the rows, and the buttons, in place
    }
    sessionsKey = key;
    const byUser = new Map();
    for (const s of list) {
      if (!byUser.has(s.userID)) {
        byUser.set(s.userID, []);
      }
      byUser.get(s.userID).push(s);
    }
    const users = [...byUser.keys()].sort();
    $('users-count').textContent = '(' + users.length + ' users, ' + list.length + ' sessions)';
    const body = document.createElement('tbody');
    body.id = 'sessions';
    if (!users.length) {
      const tr = document.createElement('tr');
      const td = cell('Nobody is online.');
      td.colSpan = 7;
      td.className = 'muted';
      tr.append(td);
      body.append(tr);
    }
    for (const user of users) {
      const sessions = byUser.get(user);
      const tr = document.createElement('tr');
      tr.className = 'user';
      tr.dataset.user = user;
      const name = cell(user);
      name.className = 'mono';
      const count = cell(sessions.length === 1 ? '1 session' : sessions.length + ' sessions');
      count.colSpan = 5;
      tr.append(name, count, buttonCell('Kick user', 'kick-user', () => kick({ userID: user }, 'user ' + user)));
      body.append(tr);
      for (const s of sessions) {
        const row = document.createElement('tr');
        row.dataset.session = s.sessionID;
        row.dataset.sessionUser = user;
        const id = cell(s.sessionID);
        id.className = 'mono';
        const addr = cell(s.address);
        addr.className = 'mono';
        row.append(cell(''), id, cell(s.platform), cell(s.transport), addr,
          cell(new Date(s.since).toLocaleString()),
          buttonCell('Kick', 'kick-session', () => kick({ sessionID: s.sessionID }, 'session ' + s.sessionID)));
        body.append(row);
      }
    }
    $('sessions').replaceWith(body);
  }

  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  function buttonCell(label, cls, onClick) {
    const td = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'kick ' + cls;
    b.textContent = label;
    b.addEventListener('click', async () => {
      b.disabled = true;
      await onClick();
      b.disabled = false;
    });
    td.append(b);
    return td;
  }

  async function kick(body, what) {
    const result = $('kick-result');
    try {
      const res = await api('POST', '/admin/api/kick', body);
      result.textContent = 'Kicked ' + what + ': ' + res.kicked + (res.kicked === 1 ? ' session' : ' sessions') + ' disconnected.';
      result.className = 'result ok';
    } catch (e) {
      if (e.status === 401) {
        tokenRefused();
        return;
      }
      result.textContent = 'Could not kick ' + what + ': ' + e.message;
      result.className = 'result fail';
    }
    poll();
  }

  // --- messages ---

  async function sendForm(ev, resultID, send) {
    ev.preventDefault();
    const form = ev.target;
    const result = $(resultID);
    const button = form.querySelector('button');
    button.disabled = true;
    result.className = 'result';
    result.textContent = 'Sending…';
    try {
      result.textContent = await send();
      result.className = 'result ok';
      form.reset();
    } catch (e) {
      if (e.status === 401) {
        tokenRefused();
        return;
      }
      result.textContent = 'Not sent: ' + e.message;
      result.className = 'result fail';
    } finally {
      button.disabled = false;
    }
  }

  function sendMessage(ev) {
    const userID = $('message-user').value.trim();
    const content = $('message-content').value;
    return sendForm(ev, 'message-result', async () => {
      const res = await api('POST', '/admin/api/message', { userID, content });
      return 'Sent to ' + userID + ' (' + res.conversationID + ', seq ' + res.seq + ').';
    });
  }

  function broadcast(ev) {
    const content = $('broadcast-content').value;
    return sendForm(ev, 'broadcast-result', async () => {
      const res = await api('POST', '/admin/api/broadcast', { content });
      return 'Sent to ' + res.users + ' online users' + (res.failed ? ', ' + res.failed + ' failed.' : '.');
    });
  }

  // Charts follow the canvas's size when the window changes.
  window.addEventListener('resize', () => {
    if (running) {
      renderCharts();
    }
  });

  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('message-form').addEventListener('submit', sendMessage);
  $('broadcast-form').addEventListener('submit', broadcast);

  if (token) {
    start();
  } else {
    showLogin('');
  }
})();
