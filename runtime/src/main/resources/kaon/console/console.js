// Kaon's web console: one page, no libraries. It calls /console/api/ on the node that served it,
// which answers with the gRPC API's messages in their JSON form, checked with the same bearer
// token. Job data is only ever set as text, never as markup.
'use strict';

const TOKEN_KEY = 'kaon.token';
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const POLL_MS = 2000;
// Live loss points kept per job page: enough for a long run's shape, bounded for the browser.
const MAX_LIVE_POINTS = 3000;
const MAX_LOG_LINES = 1000;

let dispose = () => {};

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

function headers() {
  return token() ? { Authorization: 'Bearer ' + token() } : {};
}

async function failureOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch (e) {
    // not JSON: a proxy's page, say; the status says enough
  }
  return new ApiError(response.status, body.code || String(response.status), body.message || response.statusText);
}

async function api(path, options = {}) {
  const response = await fetch('/console/api/' + path, { ...options, headers: headers() });
  if (!response.ok) {
    throw await failureOf(response);
  }
  return response.json();
}

/** Reads the job's server-sent events until the job ends, the stream breaks or it is aborted. */
function watch(id, onEvent, signal) {
  return stream('jobs/' + encodeURIComponent(id) + '/events', onEvent, signal);
}

/** Reads server-sent events of an api/ path, each data line as JSON, until the stream ends. */
async function stream(path, onEvent, signal) {
  const response = await fetch('/console/api/' + path, { headers: headers(), signal });
  if (!response.ok) {
    throw await failureOf(response);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) {
          type = line.slice(6).trim();
        } else if (line.startsWith('data:')) {
          data += line.slice(5).trim();
        }
      }
      if (data) {
        onEvent(type, JSON.parse(data));
      }
    }
  }
}

// ---- DOM helpers ---------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') {
      node.className = value;
    } else if (name.startsWith('on')) {
      node.addEventListener(name.slice(2), value);
    } else if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value === true ? '' : value);
    }
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

function show(...nodes) {
  const view = document.getElementById('view');
  view.replaceChildren(...nodes);
  return view;
}

function status(text, isError = false) {
  const footer = document.getElementById('status');
  footer.textContent = text;
  footer.className = isError ? 'error' : 'muted';
}

function table(columns, rows, rowAttributes = () => ({})) {
  return el('table', {},
    el('thead', {}, el('tr', {}, columns.map(c => el('th', { class: c.num ? 'num' : '' }, c.title)))),
    el('tbody', {}, rows.length === 0
      ? el('tr', {}, el('td', { colspan: columns.length, class: 'muted' }, 'none'))
      : rows.map(row => el('tr', rowAttributes(row), columns.map(c => el('td', { class: c.num ? 'num' : '' }, c.value(row)))))));
}

// ---- formatting ----------------------------------------------------------------------------

function num(value) {
  return Number(value || 0);
}

function span(ms) {
  if (!(ms >= 0)) {
    return '-';
  }
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd' + Math.floor(s % 86400 / 3600) + 'h';
}

function millis(timestamp) {
  return timestamp ? Date.parse(timestamp) : NaN;
}

function age(job) {
  return span(Date.now() - millis(job.createdAt));
}

function duration(job) {
  const started = millis(job.startedAt);
  const ended = job.endedAt ? millis(job.endedAt) : Date.now();
  return span(ended - started);
}

function when(timestamp) {
  return timestamp ? new Date(timestamp).toLocaleString() : '-';
}

function bytes(n) {
  n = num(n);
  if (n < 1024) return n + ' B';
  if (n < 1 << 20) return (n / 1024).toFixed(1) + ' KiB';
  if (n < 1 << 30) return (n / (1 << 20)).toFixed(1) + ' MiB';
  return (n / (1 << 30)).toFixed(2) + ' GiB';
}

function phaseBadge(phase, id) {
  return el('span', { class: 'phase ' + phase, id }, phase || 'UNKNOWN');
}

/** Epochs done and where the current one is, as a fraction of the job's epochs. */
function progressOf(job) {
  const total = num(job.spec && job.spec.epochs) || 1;
  const done = (job.epochs || []).length;
  let fraction = done / total;
  if (job.progress && !TERMINAL.has(job.phase)) {
    const p = job.progress;
    fraction = (num(p.epoch) - 1 + num(p.step) / Math.max(1, num(p.stepsPerEpoch))) / total;
  }
  if (job.phase === 'SUCCEEDED') fraction = 1;
  return { fraction: Math.min(1, Math.max(0, fraction)), text: done + '/' + total + ' epochs' };
}

function progressBar(job) {
  const p = progressOf(job);
  const filled = el('span');
  // Through the CSSOM: the page's policy refuses style attributes.
  filled.style.width = (p.fraction * 100).toFixed(1) + '%';
  return el('span', {}, el('span', { class: 'bar' }, filled), ' ', p.text);
}

// ---- charts --------------------------------------------------------------------------------

/**
 * Draws series of {x, y} points into an <svg>, with vertical marks (generation changes). The
 * number of points drawn is kept in its data-points attribute.
 */
function drawChart(target, { series, marks = [], xMax = 1, yMin, yMax, yFormat = v => v.toFixed(2) }) {
  const width = 520;
  const height = 220;
  const left = 48;
  const right = 10;
  const top = 18;
  const bottom = 24;
  const all = series.flatMap(s => s.points);
  const xs = all.map(p => p.x);
  const ys = all.map(p => p.y).filter(Number.isFinite);
  // The x axis spans the job's epochs up to 10, then what has been trained: a 500-epoch job's
  // first epochs would otherwise be a sliver at the left.
  const x1 = Math.max(1, Math.min(xMax, 10), Math.ceil(Math.max(...xs, 0) * 1.02));
  let y0 = yMin !== undefined ? yMin : Math.min(...ys);
  let y1 = yMax !== undefined ? yMax : Math.max(...ys);
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) {
    y0 = 0;
    y1 = 1;
  }
  if (y1 - y0 < 1e-9) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const px = x => left + (x / x1) * (width - left - right);
  const py = y => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    parts.push(svg('line', { class: 'grid', x1: left, x2: width - right, y1: py(y), y2: py(y) }));
    parts.push(svg('text', { class: 'tick', x: left - 4, y: py(y) + 3, 'text-anchor': 'end' }, yFormat(y)));
  }
  const step = Math.max(1, Math.ceil(x1 / 10));
  for (let x = 0; x <= x1 + 1e-9; x += step) {
    parts.push(svg('text', { class: 'tick', x: px(x), y: height - 8, 'text-anchor': 'middle' }, String(x)));
  }
  parts.push(svg('line', { class: 'axis', x1: left, x2: left, y1: top, y2: height - bottom }));
  parts.push(svg('line', { class: 'axis', x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }));
  for (const mark of marks) {
    parts.push(svg('line', { class: 'mark', x1: px(mark.x), x2: px(mark.x), y1: top, y2: height - bottom },
      svg('title', {}, mark.label)));
  }
  let drawn = 0;
  let legendX = left + 6;
  series.forEach((s, i) => {
    const points = s.points.filter(p => Number.isFinite(p.y));
    drawn += points.length;
    if (s.line && points.length > 1) {
      parts.push(svg('polyline', { class: 'series-' + i, points: points.map(p => px(p.x).toFixed(1) + ',' + py(p.y).toFixed(1)).join(' ') }));
    }
    if (s.dots) {
      for (const p of points) {
        parts.push(svg('circle', { class: 'series-' + i, cx: px(p.x), cy: py(p.y), r: 3 }, svg('title', {}, s.name + ': ' + yFormat(p.y))));
      }
    }
    parts.push(svg('text', { class: 'legend series-' + i, x: legendX, y: 11 }, s.name));
    legendX += 16 + s.name.length * 6;
  });
  target.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  target.setAttribute('data-points', String(drawn));
  target.replaceChildren(...parts);
}

// ---- views ---------------------------------------------------------------------------------

function loginView(next, message) {
  document.getElementById('nav').hidden = true;
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true });
  const error = el('p', { id: 'login-error', class: 'error' }, message || '');
  const form = el('form', { class: 'login', id: 'login' },
    el('h1', {}, 'Sign in'),
    el('p', { class: 'muted' }, 'The API token of this cluster (kaon.grpc.auth.token; a local node keeps it in ~/.config/kaon/token).'),
    el('label', { for: 'token' }, 'Token'), input,
    el('button', { type: 'submit', id: 'login-submit' }, 'Sign in'),
    error);
  form.addEventListener('submit', async event => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await api('jobs');
      location.hash = next && next !== '#/login' ? next : '#/jobs';
      route();
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = e.status === 401 ? 'The token was refused: ' + e.message : 'Cannot reach the API: ' + e.message;
    }
  });
  show(form);
  input.focus();
  return () => {};
}

/** Repeats load() every POLL_MS until disposed; a refused token returns to the login. */
function polling(load) {
  let stopped = false;
  let timer;
  const tick = async () => {
    try {
      await load();
      status('Updated ' + new Date().toLocaleTimeString());
    } catch (e) {
      if (e.status === 401) {
        stopped = true;
        loginView(location.hash, 'Sign in again: ' + e.message);
        return;
      }
      status(e.message, true);
    }
    if (!stopped) {
      timer = setTimeout(tick, POLL_MS);
    }
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function jobsView() {
  const body = el('div', {}, el('p', { class: 'muted' }, 'Loading jobs…'));
  show(el('h1', {}, 'Jobs'), body);
  return polling(async () => {
    const answer = await api('jobs');
    const jobs = (answer.jobs || []).slice().sort((a, b) => (millis(b.createdAt) || 0) - (millis(a.createdAt) || 0));
    body.replaceChildren(table([
      { title: 'Job', value: j => el('a', { href: '#/jobs/' + encodeURIComponent(j.jobId) }, j.jobId) },
      { title: 'Task', value: j => j.spec ? j.spec.task : '' },
      { title: 'Phase', value: j => phaseBadge(j.phase) },
      { title: 'Progress', value: progressBar },
      { title: 'World', num: true, value: j => num(j.worldSize) + ' (' + num(j.spec && j.spec.minWorkers) + '..' + num(j.spec && j.spec.maxWorkers) + ')' },
      { title: 'Age', num: true, value: age },
      { title: 'Duration', num: true, value: duration },
      { title: 'Health', value: j => el('span', { class: 'health' }, j.health || '') },
    ], jobs, j => ({ class: 'clickable', 'data-job': j.jobId, onclick: event => {
      if (event.target.tagName !== 'A') location.hash = '#/jobs/' + encodeURIComponent(j.jobId);
    } })));
  });
}

function clusterView() {
  const members = el('div');
  const devices = el('div');
  show(el('h1', {}, 'Cluster'), el('h2', {}, 'Members'), members, el('h2', {}, 'Devices'), devices);
  return polling(async () => {
    const answer = await api('cluster');
    members.replaceChildren(table([
      { title: 'Address', value: m => m.address },
      { title: 'Status', value: m => m.status },
      { title: 'Reachable', value: m => m.reachable ? 'yes' : el('span', { class: 'error' }, 'no') },
      { title: 'Roles', value: m => (m.roles || []).join(', ') },
    ], (answer.members && answer.members.members) || []));
    devices.replaceChildren(table([
      { title: 'Node', value: d => d.node },
      { title: 'Slot', value: d => d.id },
      { title: 'Device', value: d => d.device },
      { title: 'Threads', num: true, value: d => num(d.threads) },
      { title: 'Owner', value: d => d.owner || el('span', { class: 'muted' }, 'free') },
    ], (answer.devices && answer.devices.devices) || [], d => ({ 'data-owner': d.owner || '' })));
  });
}

function jobView(id) {
  const aborter = new AbortController();
  let job = null;
  let stepsPerEpoch = 0;
  const live = []; // {x, loss}
  const rates = []; // {x, rate}
  let lastRate = null; // {t, steps}
  let redraw = 0;

  const phase = el('span', { id: 'job-phase', class: 'phase' }, '…');
  const facts = el('dl', { class: 'facts' });
  const cancel = el('button', { type: 'button', id: 'cancel', class: 'danger', disabled: true }, 'Cancel job');
  const cancelNote = el('span', { id: 'cancel-note', class: 'muted' });
  const lossChart = svg('svg', { id: 'loss-chart', role: 'img', 'aria-label': 'loss' });
  const accuracyChart = svg('svg', { id: 'accuracy-chart', role: 'img', 'aria-label': 'accuracy' });
  const rateChart = svg('svg', { id: 'rate-chart', role: 'img', 'aria-label': 'samples per second' });
  const generations = el('div', { id: 'generations' });
  const ranks = el('div', { id: 'ranks' });
  const checkpoint = el('div', { id: 'checkpoint' });
  const epochs = el('div', { id: 'epochs' });
  const log = el('div', { id: 'job-log', class: 'log' });
  show(
    el('h1', {}, 'Job ', el('code', {}, id), ' ', phase),
    facts,
    el('div', { class: 'actions' }, cancel, cancelNote),
    el('div', { class: 'charts' },
      el('div', { class: 'chart' }, el('h3', {}, 'Loss'), lossChart),
      el('div', { class: 'chart' }, el('h3', {}, 'Accuracy'), accuracyChart),
      el('div', { class: 'chart' }, el('h3', {}, 'Samples/s'), rateChart)),
    el('h2', {}, 'Generations'), generations,
    el('h2', {}, 'Ranks'), ranks,
    el('h2', {}, 'Latest checkpoint'), checkpoint,
    el('h2', {}, 'Epochs'), epochs,
    el('h2', {}, 'Log ', el('span', { class: 'muted' }, '(every node that ran a part of the job; kaon logs ' + id + ')')), log);

  // Cancelling takes two clicks: the first arms the button, the second sends the call.
  let armed = false;
  let cancelling = false;
  cancel.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      cancel.textContent = 'Confirm cancel';
      cancel.classList.add('confirm');
      cancelNote.textContent = 'Click again to cancel ' + id + '.';
      return;
    }
    cancel.disabled = true;
    armed = false;
    cancelling = true;
    cancelNote.textContent = 'Cancelling…';
    try {
      const answer = await api('jobs/' + encodeURIComponent(id) + '/cancel', { method: 'POST' });
      cancelling = false;
      cancel.textContent = 'Cancel job';
      cancel.classList.remove('confirm');
      cancelNote.textContent = '';
      update(answer);
    } catch (e) {
      cancelling = false;
      cancelNote.textContent = 'Not cancelled: ' + e.message;
      cancel.textContent = 'Cancel job';
      cancel.classList.remove('confirm');
      cancel.disabled = false;
    }
  });

  /** The steps done: live from rank 0's progress while it trains, else as recorded. */
  function stepsNow() {
    const p = job && job.progress;
    return p && !TERMINAL.has(job.phase) && spe() > 0
      ? Math.max(num(job.stepsDone), (num(p.epoch) - 1) * spe() + num(p.step))
      : num(job && job.stepsDone);
  }

  function spe() {
    if (stepsPerEpoch > 0) return stepsPerEpoch;
    const first = job && (job.epochs || [])[0];
    return first ? num(first.stepsDone) / Math.max(1, num(first.epoch)) : 0;
  }

  function update(status) {
    job = status;
    phase.textContent = job.phase;
    phase.className = 'phase ' + job.phase;
    const spec = job.spec || {};
    const pairs = [
      ['Task', spec.task], ['World size', num(job.worldSize) + ' (' + num(spec.minWorkers) + '..' + num(spec.maxWorkers) + ')'],
      ['Progress', progressBar(job)], ['Steps', el('span', { id: 'job-steps' }, stepsNow())],
      ['Generation', num(job.generation)], ['State from', job.stateSource || '-'],
      ['Created', when(job.createdAt)], ['Started', when(job.startedAt)],
      ['Ended', when(job.endedAt)], ['Coordinator', job.coordinatorNode || '-'],
      ['Batch', num(spec.globalBatch)], ['Optimizer', (spec.optimizer || '') + ' lr ' + num(spec.learningRate)],
      ['Test accuracy', job.testAccuracy ? num(job.testAccuracy).toFixed(4) : '-'], ['Health', el('span', { class: job.health ? 'health' : 'healthy', id: 'job-health' }, job.health || 'healthy')],
    ];
    if (job.message) pairs.push(['Message', el('span', { id: 'job-message' }, job.message)]);
    if (job.digest) pairs.push(['Model SHA-256', el('code', {}, job.digest)]);
    facts.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v === undefined ? '-' : v)]));
    if (TERMINAL.has(job.phase)) {
      cancel.disabled = true;
      cancel.textContent = 'Cancel job';
      cancel.classList.remove('confirm');
      cancelNote.textContent = '';
      status('This job has ended.');
    } else if (!cancelling) {
      cancel.disabled = false;
    }
    generations.replaceChildren(table([
      { title: '#', num: true, value: g => num(g.generation) },
      { title: 'Formed', value: g => g.atMillis ? new Date(num(g.atMillis)).toLocaleTimeString() : '-' },
      { title: 'World', num: true, value: g => num(g.worldSize) },
      { title: 'Resumed at step', num: true, value: g => num(g.resumeStep) },
      { title: 'Reason', value: g => g.reason },
      { title: 'State from', value: g => g.stateSource },
    ], (job.generations || []).slice().reverse()));
    ranks.replaceChildren(table([
      { title: 'Rank', num: true, value: r => num(r.rank) },
      { title: 'Worker', num: true, value: r => num(r.worker) },
      { title: 'Node', value: r => r.node },
      { title: 'Device', value: r => r.device },
      { title: 'Edge', value: r => el('span', { title: r.edgeReason || '' }, r.edge || '-') },
    ], job.ranks || []));
    const c = job.latestCheckpoint;
    checkpoint.replaceChildren(c && c.id
      ? el('p', {}, el('code', {}, c.id), ' at step ' + num(c.step) + ', ' + bytes(c.bytes))
      : el('p', { class: 'muted' }, 'none yet'));
    epochs.replaceChildren(table([
      { title: 'Epoch', num: true, value: e => num(e.epoch) },
      { title: 'Loss', num: true, value: e => num(e.meanLoss).toFixed(4) },
      { title: 'Train acc.', num: true, value: e => num(e.trainAccuracy).toFixed(4) },
      { title: 'Test acc.', num: true, value: e => num(e.testAccuracy).toFixed(4) },
      { title: 'Samples/s', num: true, value: e => Math.round(num(e.samplesPerSecond)) },
      { title: 'World', num: true, value: e => num(e.worldSize) },
      { title: 'Each sample once', value: e => e.eachSampleOnce ? 'yes' : 'no' },
    ], job.epochs || []));
    scheduleCharts();
  }

  function addEpoch(result) {
    if (!job) return;
    const list = (job.epochs || []).filter(e => num(e.epoch) !== num(result.epoch));
    list.push(result);
    list.sort((a, b) => num(a.epoch) - num(b.epoch));
    update({ ...job, epochs: list });
  }

  function addProgress(p) {
    stepsPerEpoch = num(p.stepsPerEpoch) || stepsPerEpoch;
    const x = num(p.epoch) - 1 + num(p.step) / Math.max(1, stepsPerEpoch);
    const last = live[live.length - 1];
    if (!last || x !== last.x) {
      live.push({ x, y: num(p.meanLoss) });
      if (live.length > MAX_LIVE_POINTS) {
        // Every other old point goes: the curve keeps its shape, the page its speed.
        live.splice(0, live.length, ...live.filter((_, i) => i % 2 === 0 || i > live.length - 100));
      }
    }
    const steps = (num(p.epoch) - 1) * stepsPerEpoch + num(p.step);
    const now = performance.now();
    const batch = num(job && job.spec && job.spec.globalBatch);
    if (lastRate && steps > lastRate.steps && now - lastRate.t >= 1000 && batch > 0) {
      rates.push({ x, y: (steps - lastRate.steps) * batch / ((now - lastRate.t) / 1000) });
      lastRate = { t: now, steps };
    } else if (!lastRate || steps < lastRate.steps) {
      lastRate = { t: now, steps };
    }
    if (job) {
      job.progress = p;
      const shown = document.getElementById('job-steps');
      if (shown) shown.textContent = String(stepsNow());
    }
    scheduleCharts();
  }

  function scheduleCharts() {
    if (!redraw) {
      redraw = requestAnimationFrame(() => {
        redraw = 0;
        charts();
      });
    }
  }

  function charts() {
    if (!job) return;
    const total = num(job.spec && job.spec.epochs) || 1;
    const perEpoch = spe();
    const marks = perEpoch > 0
      ? (job.generations || []).filter(g => num(g.generation) > 1).map(g => ({
        x: num(g.resumeStep) / perEpoch, label: 'generation ' + num(g.generation) + ': ' + g.reason }))
      : [];
    const done = job.epochs || [];
    drawChart(lossChart, {
      xMax: total, marks, yMin: 0, yFormat: v => v.toFixed(2), series: [
        { name: 'live (epoch mean so far)', points: live, line: true },
        { name: 'epoch mean', points: done.map(e => ({ x: num(e.epoch), y: num(e.meanLoss) })), dots: true, line: true },
      ],
    });
    drawChart(accuracyChart, {
      xMax: total, marks, yMin: 0, yMax: 1, yFormat: v => v.toFixed(2), series: [
        { name: 'train', points: done.map(e => ({ x: num(e.epoch), y: num(e.trainAccuracy) })), dots: true, line: true },
        { name: 'test', points: done.map(e => ({ x: num(e.epoch), y: num(e.testAccuracy) })), dots: true, line: true },
      ],
    });
    drawChart(rateChart, {
      xMax: total, marks, yMin: 0, yFormat: v => v >= 1000 ? (v / 1000).toFixed(1) + 'k' : v.toFixed(0), series: [
        { name: 'live', points: rates, line: true },
        { name: 'epoch', points: done.map(e => ({ x: num(e.epoch), y: num(e.samplesPerSecond) })), dots: true },
      ],
    });
  }

  // The job's log lines, followed; the newest MAX_LOG_LINES stay on the page.
  (async () => {
    let shown = 0;
    try {
      await stream('jobs/' + encodeURIComponent(id) + '/logs', (type, line) => {
        if (type === 'failure') {
          log.append(el('div', { class: 'error' }, 'The log stopped: ' + line.message));
          return;
        }
        // Kept at the newest line unless the reader scrolled up to read.
        const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 20;
        const time = new Date(num(line.atMillis)).toLocaleTimeString();
        const node = (line.node || '').replace(/^.*@/, '');
        log.append(el('div', { class: 'line ' + (line.level || '') },
          el('span', { class: 'muted' }, time + ' ' + node + ' '), el('span', { class: 'level' }, line.level || ''), ' ', line.message));
        if (++shown > MAX_LOG_LINES) {
          log.firstChild.remove();
        }
        if (atBottom) {
          log.scrollTop = log.scrollHeight;
        }
      }, aborter.signal);
    } catch (e) {
      if (!aborter.signal.aborted) {
        log.append(el('div', { class: 'error' }, 'The log stopped: ' + e.message));
      }
    }
  })();

  // The status first (a job that does not exist is said at once), then its live events; a
  // broken stream is opened again until the job has ended.
  (async () => {
    while (!aborter.signal.aborted) {
      try {
        update(await api('jobs/' + encodeURIComponent(id)));
        if (TERMINAL.has(job.phase)) {
          status('This job has ended.');
          return;
        }
        status('Live');
        await watch(id, (type, data) => {
          if (type === 'failure') {
            status(data.message, true);
          } else if (data.status) {
            update({ ...data.status, progress: data.status.progress || (job && job.progress) });
          } else if (data.progress) {
            addProgress(data.progress);
          } else if (data.epoch) {
            addEpoch(data.epoch);
          }
        }, aborter.signal);
      } catch (e) {
        if (aborter.signal.aborted) return;
        if (e.status === 401) {
          loginView(location.hash, 'Sign in again: ' + e.message);
          return;
        }
        status(e.message, true);
        if (e.status === 404) return;
      }
      await new Promise(resolve => setTimeout(resolve, POLL_MS));
    }
  })();
  return () => aborter.abort();
}

// ---- routing -------------------------------------------------------------------------------

function route() {
  dispose();
  dispose = () => {};
  const hash = location.hash || '#/jobs';
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', hash.startsWith(link.getAttribute('href')));
  }
  if (hash === '#/login') {
    dispose = loginView('#/jobs');
    return;
  }
  document.getElementById('nav').hidden = false;
  const job = hash.match(/^#\/jobs\/(.+)$/);
  if (job) {
    dispose = jobView(decodeURIComponent(job[1]));
  } else if (hash === '#/cluster') {
    dispose = clusterView();
  } else {
    dispose = jobsView();
  }
}

async function start() {
  document.getElementById('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    dispose();
    dispose = loginView('#/jobs');
  });
  window.addEventListener('hashchange', route);
  try {
    await api('jobs'); // with the session's token, or none where the node needs none
    route();
  } catch (e) {
    dispose = loginView(location.hash, e.status === 401 && token() ? 'Sign in again: ' + e.message : '');
  }
}

start();
