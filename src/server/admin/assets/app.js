// The admin page: reads /admin/api/*, finds and acts through POST /v1/command.
// The DOM is built with createElement and textContent only, never innerHTML with data:
// session ids, classes, users and values are whatever clients stored (stored XSS).
/* global document, sessionStorage, fetch, setInterval, TextEncoder */
import { drawChart, drawLegend, formatNumber } from './charts.js';

// sessionStorage, not localStorage: the password is gone when the tab closes and never shared
// with other tabs. Never a cookie (the browser would attach it to forged cross-site requests)
// and never the URL (history, Referer and proxy logs keep URLs).
const PASSWORD_KEY = 'sessiond.password';
const HOUR = 3_600_000;
const MIN_SPAN = 5 * 60_000;
const POLL_MS = 10_000;
const PAGE = 50;
const PALETTE = 8;

const $ = (id) => document.getElementById(id);

/** Everything the page has learnt so far. */
const state = {
  history: [],
  lastAt: 0,
  /** The session open in the panel: its id as JSON (text or {base64}) and its user. */
  open: null,
  /** LIST's cursor for "More", with the class it lists. */
  cursor: null,
  /** The action waiting for "Confirm". */
  pending: null,
};

class Unauthorized extends Error {}

/** Raised for an error reply: the code word and message of PROTOCOL.md. */
class CommandError extends Error {
  constructor(code, message) {
    super(`${code} ${message}`);
    this.code = code;
  }
}

// ---- talking to the server ----

function authorization() {
  const password = sessionStorage.getItem(PASSWORD_KEY);
  if (password === null) return {};
  // The server compares the password's UTF-8 bytes; a header carries one byte per character.
  const bytes = new TextEncoder().encode(password);
  return { authorization: `Bearer ${String.fromCharCode(...bytes)}` };
}

async function call(path, init = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { ...authorization(), ...init.headers },
    // No cookies, no remembered Basic credentials: the Bearer header is the only credential.
    credentials: 'omit',
    cache: 'no-store',
  });
  const body = await response.json().catch(() => null);
  if (response.status === 401) {
    const wrong = sessionStorage.getItem(PASSWORD_KEY) !== null;
    sessionStorage.removeItem(PASSWORD_KEY);
    showLogin(wrong ? 'Wrong password.' : '');
    throw new Unauthorized();
  }
  if (!response.ok || body === null) {
    const error = body?.error ?? { code: 'ERR', message: `HTTP ${response.status}` };
    throw new CommandError(error.code, error.message);
  }
  return body;
}

/** Runs one command of PROTOCOL.md; arguments are text or {base64} as the replies give them. */
async function command(...args) {
  const body = await call('/v1/command', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(args),
  });
  return body.result;
}

// ---- rendering helpers ----

/** A byte string from a reply as text: {base64} for bytes that are not UTF-8. */
function show(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object' && typeof value.base64 === 'string')
    return `base64:${value.base64}`;
  return String(value);
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : 'never';
}

function setStatus(message, kind = 'info') {
  const status = $('status');
  status.textContent = message;
  status.className = kind;
}

/** Map replies come as an object, or as [key, value] pairs when a key is not text. */
function entries(map) {
  return Array.isArray(map) ? map : Object.entries(map);
}

// ---- login ----

function showLogin(message) {
  $('app').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  setStatus(message, message ? 'error' : 'info');
  $('password').focus();
}

function showApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = sessionStorage.getItem(PASSWORD_KEY) === null;
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(PASSWORD_KEY, $('password').value);
  $('password').value = '';
  state.history = [];
  state.lastAt = 0;
  void refresh();
});

$('logout').addEventListener('click', () => {
  sessionStorage.removeItem(PASSWORD_KEY);
  showLogin('');
});

// ---- live numbers and charts ----

async function refresh() {
  let stats;
  try {
    stats = await call(`/admin/api/stats${state.lastAt ? `?since=${state.lastAt + 1}` : ''}`);
  } catch (error) {
    if (!(error instanceof Unauthorized))
      setStatus(`Could not read stats: ${error.message}`, 'error');
    return;
  }
  showApp();
  state.history.push(...stats.history);
  state.history = state.history.filter((point) => point.at > stats.now - HOUR);
  state.lastAt = state.history.at(-1)?.at ?? state.lastAt;
  const uptime = formatDuration(stats.uptimeSeconds);
  $('server-line').textContent = `${stats.version} · ${stats.store} store · up ${uptime}`;
  $('n-sessions').textContent = formatNumber(stats.sessions);
  $('n-connections').textContent = formatNumber(stats.connections);
  const latest = state.history.at(-1);
  $('n-commands').textContent = latest ? formatNumber(latest.commandsPerSecond) : '–';
  $('n-created').textContent = latest ? formatNumber(latest.createdPerMinute) : '–';
  $('n-expired').textContent = latest ? formatNumber(latest.expiredPerMinute) : '–';
  $('n-destroyed').textContent = latest ? formatNumber(latest.destroyedPerMinute) : '–';
  drawCharts(stats.now);
}

function drawCharts(now) {
  // The last hour; a younger server's whole life, and never less than a few minutes.
  const first = state.history[0]?.at ?? now;
  const range = { from: Math.max(now - HOUR, Math.min(first, now - MIN_SPAN)), to: now };
  const points = (pick) => state.history.map((p) => [p.at, pick(p)]);
  const classes = [...new Set(state.history.flatMap((p) => Object.keys(p.classes)))].sort();
  const classSeries = [
    { label: 'all', className: 'total', points: points((p) => p.sessions) },
    ...classes.map((cls, i) => ({
      label: cls,
      className: `s${i % PALETTE}`,
      points: points((p) => p.classes[cls] ?? 0),
    })),
  ];
  drawChart($('chart-classes'), { ...range, series: classSeries });
  drawLegend($('legend-classes'), classSeries);
  const churn = [
    { label: 'created', className: 's0', points: points((p) => p.createdPerMinute) },
    { label: 'expired', className: 's1', points: points((p) => p.expiredPerMinute) },
    { label: 'destroyed', className: 's2', points: points((p) => p.destroyedPerMinute) },
  ];
  drawChart($('chart-churn'), { ...range, series: churn });
  drawLegend($('legend-churn'), churn);
  const commands = [
    { label: 'commands/s', className: 's3', points: points((p) => p.commandsPerSecond) },
  ];
  drawChart($('chart-commands'), { ...range, series: commands });
  const connections = [
    { label: 'connections', className: 's4', points: points((p) => p.connections) },
  ];
  drawChart($('chart-connections'), { ...range, series: connections });
}

function formatDuration(seconds) {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} days`;
}

// ---- finding sessions ----

const FIND_MODES = {
  id: { a: 'id' },
  user: { a: 'user' },
  find: { a: 'variable', b: 'value' },
  listvar: { a: 'variable' },
  list: { a: 'class (empty for all)' },
};

$('find-by').addEventListener('change', () => {
  const mode = FIND_MODES[$('find-by').value];
  $('find-a').placeholder = mode.a;
  $('find-a').setAttribute('aria-label', mode.a);
  $('find-b').hidden = mode.b === undefined;
  if (mode.b) $('find-b').placeholder = mode.b;
});

$('find-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void find();
});

$('more').addEventListener('click', () => void listPage());

async function find() {
  const by = $('find-by').value;
  const a = $('find-a').value;
  const b = $('find-b').value;
  state.cursor = null;
  try {
    switch (by) {
      case 'id':
        await openSession(a);
        return;
      case 'user':
        showResults(
          `Sessions of user ${a}`,
          (await command('USERSESSIONS', a)).map((id) => [id]),
        );
        return;
      case 'find':
        showResults(
          `Sessions where ${a} = ${b}`,
          (await command('FIND', a, b)).map((id) => [id]),
        );
        return;
      case 'listvar':
        showResults(`Sessions that have ${a}`, entries(await command('LISTVAR', a)), 'Value');
        return;
      case 'list':
        state.cursor = { cursor: '0', cls: a };
        await listPage(true);
        return;
    }
  } catch (error) {
    if (!(error instanceof Unauthorized)) setStatus(error.message, 'error');
  }
}

async function listPage(first = false) {
  const { cursor, cls } = state.cursor;
  const args = ['LIST', 'CURSOR', cursor, 'COUNT', String(PAGE), ...(cls ? ['CLASS', cls] : [])];
  const [next, ids] = await command(...args);
  state.cursor = next === '0' ? null : { cursor: next, cls };
  const title = cls ? `Sessions of class ${cls}` : 'Sessions';
  showResults(
    title,
    ids.map((id) => [id]),
    undefined,
    !first,
  );
}

/** Lists sessions as rows of [id] or [id, value], each with an Open button. */
function showResults(title, rows, extra, append = false) {
  const table = $('results');
  const body = table.tBodies[0];
  if (!append) body.replaceChildren();
  $('results-extra').textContent = extra ?? '';
  for (const [id, value] of rows) {
    const row = document.createElement('tr');
    row.dataset.sid = JSON.stringify(id);
    const open = el('button', 'Open');
    open.type = 'button';
    open.addEventListener('click', () => void openSession(id).catch(report));
    const idCell = el('td');
    idCell.append(el('code', show(id)));
    const actions = el('td');
    actions.append(open);
    row.append(idCell, el('td', extra ? show(value) : ''), actions);
    body.append(row);
  }
  const count = body.rows.length;
  table.hidden = count === 0;
  $('more').hidden = state.cursor === null;
  $('find-summary').textContent = `${title}: ${count === 0 ? 'none' : count}`;
}

function report(error) {
  if (!(error instanceof Unauthorized)) setStatus(error.message, 'error');
}

// ---- one session ----

async function openSession(id) {
  let session;
  try {
    session = await call('/admin/api/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
    });
  } catch (error) {
    if (error instanceof CommandError && error.code === 'NOSESSION') {
      $('session').hidden = true;
      setStatus(`No such session: ${show(id)}`, 'error');
      return;
    }
    throw error;
  }
  state.open = { id: session.id, user: session.user };
  $('session-id').textContent = show(session.id);
  const ttl = session.deadline === null ? 'never' : when(session.deadline);
  const fields = [
    ['Class', show(session.class)],
    ['User', session.user === null ? '(none)' : show(session.user)],
    ['Created', when(session.created)],
    ['Last access', when(session.touched)],
    ['Idle timeout', session.timeout === 0 ? 'none' : `${session.timeout} s`],
    ['Absolute expiry', session.expires === 0 ? 'none' : when(session.expires)],
    ['Expires', ttl],
    ['Lock', session.lock ? `key ${session.lock.key} until ${when(session.lock.until)}` : 'free'],
    ['Read-only copy', session.readonly ? 'yes (left by REGENERATE)' : 'no'],
  ];
  $('session-fields').replaceChildren(
    ...fields.flatMap(([name, value]) => [el('dt', name), el('dd', value)]),
  );
  const vars = entries(session.vars);
  const body = $('session-vars').tBodies[0];
  body.replaceChildren(
    ...vars.map(([name, value]) => {
      const row = document.createElement('tr');
      row.append(el('td', show(name)), el('td', show(value)));
      return row;
    }),
  );
  if (vars.length === 0) {
    const none = el('td', '(none)', 'muted');
    none.colSpan = 2;
    body.append(el('tr'));
    body.lastChild.append(none);
  }
  $('session-data').textContent = show(session.data);
  $('destroy-user').hidden = session.user === null;
  cancelConfirm();
  $('session').hidden = false;
  $('session').scrollIntoView({ block: 'nearest' });
}

// ---- actions ----

/** Shows Confirm / Cancel for `action`; nothing destructive happens on the first click. */
function askConfirm(text, action) {
  state.pending = action;
  $('confirm-text').textContent = text;
  $('confirm').hidden = false;
  $('confirm-yes').focus();
}

function cancelConfirm() {
  state.pending = null;
  $('confirm').hidden = true;
}

$('confirm-no').addEventListener('click', cancelConfirm);
$('confirm-yes').addEventListener('click', () => {
  const action = state.pending;
  cancelConfirm();
  if (action) void action().catch(report);
});

$('destroy').addEventListener('click', () => {
  const { id } = state.open;
  askConfirm(`Destroy session ${show(id)}?`, async () => {
    const destroyed = await command('DESTROY', id);
    setStatus(destroyed === 1 ? `Destroyed session ${show(id)}.` : 'It was already gone.');
    closeSession(id);
    void refresh();
  });
});

$('destroy-user').addEventListener('click', () => {
  const { user } = state.open;
  askConfirm(`Destroy every session of user ${show(user)}?`, async () => {
    const count = await command('DESTROYUSER', user);
    setStatus(`Destroyed ${count} session${count === 1 ? '' : 's'} of user ${show(user)}.`);
    closeSession(state.open.id);
    void refresh();
  });
});

function closeSession(id) {
  $('session').hidden = true;
  state.open = null;
  const key = JSON.stringify(id);
  for (const row of [...$('results').tBodies[0].rows]) if (row.dataset.sid === key) row.remove();
  $('results').hidden = $('results').tBodies[0].rows.length === 0;
}

$('gc').addEventListener('click', () => {
  void command('GC')
    .then((count) => {
      setStatus(`GC removed ${count} expired session${count === 1 ? '' : 's'}.`);
      void refresh();
    })
    .catch(report);
});

// EMPTY removes every session: it runs only once the word is typed out.
$('empty-confirm').addEventListener('input', () => {
  $('empty').disabled = $('empty-confirm').value !== 'EMPTY';
});

$('empty-form').addEventListener('submit', (event) => {
  event.preventDefault();
  if ($('empty-confirm').value !== 'EMPTY') return;
  $('empty-confirm').value = '';
  $('empty').disabled = true;
  void command('EMPTY')
    .then((count) => {
      setStatus(`Removed ${count} session${count === 1 ? '' : 's'}.`);
      void refresh();
    })
    .catch(report);
});

// ---- start ----

void refresh();
setInterval(() => {
  if (!$('app').hidden && document.visibilityState === 'visible') void refresh();
}, POLL_MS);
