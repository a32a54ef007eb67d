// The edge's status page: draws the last minutes the shim kept (/status/history) as soon as it
// opens, then polls /status about every second, shows the document, and adds each to the charts.
// Plain browser JavaScript, no build step; text is only ever set as text (queue names and conflict
// keys come from clients).

const POLL_INTERVAL_MS = 1000;
const POLL_TIMEOUT_MS = 5000;
// The shim's history says how far back it goes; until it has, this.
let windowSeconds = 10 * 60;
// The replay rate in the document is over 10 s; the page reckons the sync's over as long.
const RATE_WINDOW_SECONDS = 10;
const TRANSITIONS_SHOWN = 10;

const $ = (id) => document.getElementById(id);

// ---- formatting ----

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

function count(value) {
  return value === null || value === undefined ? '–' : integer.format(value);
}

function rate(value) {
  return value === null || value === undefined ? '–' : `${decimal.format(value)}/s`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function bytes(value) {
  if (value === null || value === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = value;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${decimal.format(scaled)} ${units[unit]}`;
}

function clockTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : '–';
}

function ago(iso) {
  return iso ? `${clockTime(iso)} (${duration((Date.now() - Date.parse(iso)) / 1000)} ago)` : 'never';
}

function percent(fraction) {
  return Math.round(Math.min(1, Math.max(0, fraction)) * 1000) / 10;
}

/** An endpoint as shown: without any user name or password it may carry. */
function safeUrl(raw) {
  try {
    const url = new URL(raw);
    url.username = '';
    url.password = '';
    return url.origin + (url.pathname === '/' ? '' : url.pathname);
  } catch {
    return '(not a URL)';
  }
}

function setText(id, text) {
  const element = $(id);
  if (element.textContent !== text) element.textContent = text;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const [text, className] of cells) tr.append(element('td', text, className));
  return tr;
}

/** Re-renders a list only when what it shows changed, so that an opened <details> stays open. */
const rendered = new Map();
function renderOnChange(key, value, render) {
  const signature = JSON.stringify(value);
  if (rendered.get(key) === signature) return;
  rendered.set(key, signature);
  render(value);
}

// ---- replay progress ----

// The document counts messages replayed since the shim started and those still waiting; a replay's
// progress is what it has replayed since it began over that plus what still waits. When it began is
// the last count this page saw before it (or the first it saw of it, on a page opened mid-replay).
let replayedBefore = null; // `replayed` as last seen while no replay ran
let replayBaseline = null; // `replayed` when the current (or last) replay began
let wasReplaying = false;

function replayProgress(status) {
  const { replay, backlog, mode } = status;
  const replaying = mode === 'replaying' || replay.state === 'running';
  if (replaying && !wasReplaying) replayBaseline = replayedBefore ?? replay.replayed;
  if (!replaying) replayedBefore = replay.replayed;
  if (mode === 'offline') replayBaseline = null;
  wasReplaying = replaying;
  if (replayBaseline === null) {
    return { value: backlog === 0 ? 100 : 0, text: backlog === 0 ? 'nothing waiting' : `0%, ${count(backlog)} waiting for the region` };
  }
  const done = replay.replayed - replayBaseline;
  const total = done + backlog;
  const value = total === 0 ? 100 : percent(done / total);
  return { value, text: `${value}% (${count(done)} of ${count(total)})` };
}

// ---- rendering the document ----

function renderMode(status) {
  const mode = $('mode');
  mode.dataset.mode = status.mode;
  setText('mode', status.mode);
  const since = $('mode-since');
  since.dateTime = status.since;
  setText('mode-since', `${clockTime(status.since)} (${duration((Date.now() - Date.parse(status.since)) / 1000)})`);
  setText('mode-reason', status.reason);
  document.title = `${status.mode} · Holdfast edge`;
}

function renderUpstream(status) {
  const { upstream, breaker } = status;
  setText('breaker', breaker ?? 'none (no upstream)');
  $('breaker').className = breaker && breaker !== 'closed' ? 'state-bad' : '';
  setText('upstream-region', upstream ? upstream.region : '–');
  setText('upstream-url', upstream ? safeUrl(upstream.url) : 'none: this shim is standalone');
  setText('upstream-success', upstream ? ago(upstream.lastSuccessAt) : '–');
  setText('upstream-failure', upstream && upstream.lastFailureAt ? `${ago(upstream.lastFailureAt)}: ${upstream.lastFailure ?? ''}` : upstream ? 'never' : '–');
  setText('upstream-credentials', upstream ? (upstream.credentialsRefused ?? 'taken') : '–');
  $('upstream-credentials').className = upstream?.credentialsRefused ? 'state-bad' : '';
  const recovery = upstream?.recovery;
  setText(
    'upstream-recovery',
    recovery && recovery.successes > 0
      ? `${recovery.successes} of ${recovery.needed} probes, ${duration(recovery.sinceFirstSuccessSeconds)} of ${duration(recovery.neededSeconds)}`
      : '–',
  );
}

function renderBacklog(status) {
  setText('backlog', count(status.backlog));
  setText('backlog-oldest', duration(status.oldestBacklogAgeSeconds));
}

function renderReplay(status) {
  const { replay } = status;
  const progress = $('replay-progress');
  if (!replay) {
    progress.value = 0;
    setText('replay-percent', '(no upstream)');
    for (const id of ['replay-state', 'replay-rate', 'replay-eta', 'replay-replayed', 'replay-error', 'replay-window', 'replay-link', 'replay-duplicates']) setText(id, '–');
    return;
  }
  const { value, text } = replayProgress(status);
  progress.value = value;
  setText('replay-percent', text);
  setText('replay-state', replay.state);
  setText('replay-rate', rate(replay.rate));
  setText('replay-eta', replay.etaSeconds === null ? '–' : duration(replay.etaSeconds));
  setText('replay-replayed', count(replay.replayed));
  setText('replay-error', replay.lastError ?? 'none');
  setText('replay-window', `up to ${count(replay.window)} batches`);
  setText('replay-link', replay.linkBytesPerSecond === null ? 'not measured yet' : `${bytes(replay.linkBytesPerSecond)}/s at best lately`);
  setText('replay-duplicates', count(replay.possiblyDuplicated));
  $('replay-duplicates').className = replay.possiblyDuplicated > 0 ? 'state-bad' : '';
}

function renderSync(status) {
  const { sync } = status;
  const progress = $('sync-progress');
  if (!sync) {
    progress.value = 0;
    setText('sync-percent', '(no upstream)');
    for (const id of ['sync-state', 'sync-items', 'sync-rate', 'sync-eta', 'sync-outcomes', 'sync-error']) setText(id, '–');
    return;
  }
  const value = sync.total > 0 ? percent(sync.done / sync.total) : sync.state === 'done' ? 100 : 0;
  progress.value = value;
  setText('sync-percent', `${value}%`);
  setText('sync-state', sync.state + (sync.finishedAt ? ` (finished ${clockTime(sync.finishedAt)})` : ''));
  setText('sync-items', `${count(sync.done)} of ${count(sync.total)}`);
  const syncRate = sync.state === 'running' ? recentSyncRate() : null;
  setText('sync-rate', rate(syncRate));
  setText('sync-eta', syncRate ? duration((sync.total - sync.done) / syncRate) : '–');
  setText('sync-outcomes', `${count(sync.written)} written, ${count(sync.identical)} identical, ${count(sync.conflicts)} in conflict, ${count(sync.skipped)} skipped`);
  setText('sync-error', sync.lastError ?? 'none');
}

function renderStorage(status) {
  const { storage } = status;
  // A store on a database server (PostgreSQL) has no disk of the shim's to show.
  $('storage-heading').parentElement.hidden = storage === null;
  if (!storage) return;
  const meter = $('store-meter');
  if (storage.maxStoreBytes) {
    meter.max = storage.maxStoreBytes;
    meter.low = 0.8 * storage.maxStoreBytes;
    meter.high = 0.9 * storage.maxStoreBytes;
    meter.optimum = 0;
    meter.value = Math.min(storage.storeBytes, storage.maxStoreBytes);
    setText('store-size', `${bytes(storage.storeBytes)} of ${bytes(storage.maxStoreBytes)}`);
  } else {
    meter.max = 1;
    meter.value = 0;
    setText('store-size', `${bytes(storage.storeBytes)} (no bound)`);
  }
  setText('storage-state', storage.state);
  $('storage-state').className = storage.state === 'ok' ? '' : 'state-bad';
  setText('disk-free', bytes(storage.diskFreeBytes));
  setText('disk-reserve', `${bytes(storage.diskReserveBytes)}, ${storage.reserveHeld ? 'held' : 'given up'}`);
}

function renderSite(status) {
  const { site } = status;
  // One node is the whole site: its mode is shown above.
  $('site-heading').parentElement.hidden = !site || site.nodes.length < 2;
  if (!site) return;
  setText('site-mode', site.mode);
  const nodes = site.nodes.map((node) => [node.name, node.mode, node.replays, node.seenSecondsAgo, node.name === site.node]);
  renderOnChange('site', nodes, (value) => {
    $('site-nodes').replaceChildren(
      ...value.map(([name, mode, replays, seen, self]) => {
        const item = element('li');
        const silent = seen >= 10;
        item.append(
          element('strong', name),
          ` ${mode}${replays ? ', replays the backlog' : ''}${self ? ' (this node)' : ''} `,
          element('span', `heard ${duration(seen)} ago`, silent ? 'state-bad' : 'muted'),
        );
        return item;
      }),
    );
  });
}

function renderRequests(status) {
  setText('requests-upstream', count(status.requests.upstream));
  setText('requests-local', count(status.requests.local));
}

function renderQueues(status) {
  const rows = status.queues.map((queue) => [
    [queue.name],
    [queue.path === 'upstream' ? 'to the region' : 'to the edge store'],
    [count(queue.local.visible), 'num'],
    [count(queue.local.inFlight), 'num'],
    [count(queue.local.delayed), 'num'],
    [count(queue.backlog), 'num'],
    [duration(queue.oldestBacklogAgeSeconds), 'num'],
    [count(queue.replayed), 'num'],
    [rate(queue.replayRate), 'num'],
    // Messages deleted unread for their age: lost to whoever was to read them.
    [count(queue.expired), queue.expired > 0 ? 'num state-bad' : 'num'],
    [queue.replayWaits ?? '–', queue.replayWaits ? 'state-bad' : ''],
  ]);
  renderOnChange('queues', rows, (value) => {
    $('queues').tBodies[0].replaceChildren(...value.map(row));
    $('queues-empty').hidden = value.length > 0;
  });
}

function renderAgents(status) {
  const rows = status.agents.map((agent) => [
    [agent.stage],
    [agent.state, agent.state === 'crashed' || agent.state === 'restarting' ? 'state-bad' : ''],
    [count(agent.tasksDone), 'num'],
    [count(agent.restarts), 'num'],
    [agent.lastRestartAt ? `${clockTime(agent.lastRestartAt)}: ${agent.lastRestartReason ?? ''}` : '–'],
    [clockTime(agent.lastHeartbeatAt)],
  ]);
  renderOnChange('agents', rows, (value) => {
    $('agents').tBodies[0].replaceChildren(...value.map(row));
    $('agents-empty').hidden = value.length > 0;
  });
}

function renderConflicts(status) {
  setText('conflict-count', count(status.conflictCount));
  renderOnChange('conflicts', status.conflicts, (conflicts) => {
    $('conflicts').replaceChildren(
      ...conflicts.map((conflict) => {
        const item = element('li');
        item.append(element('strong', conflict.kind), ` ${conflict.key} `, element('span', `detected ${clockTime(conflict.detectedAt)}`, 'muted'));
        // The records themselves are not in the status: they are loaded when asked for.
        const details = element('details');
        const values = element('pre', 'loading…');
        details.append(element('summary', 'Region and edge values'), values);
        details.addEventListener('toggle', () => details.open && showConflict(conflict.id, values), { once: true });
        item.append(details);
        return item;
      }),
    );
    $('conflicts-empty').hidden = conflicts.length > 0 || status.conflictCount > 0;
  });
}

async function showConflict(id, target) {
  try {
    const response = await fetch(`conflicts/${id}`, { cache: 'no-store', signal: AbortSignal.timeout(POLL_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`the shim answered ${response.status}`);
    const conflict = await response.json();
    target.textContent = JSON.stringify({ region: conflict.region, edge: conflict.edge }, null, 2);
  } catch (error) {
    target.textContent = `Cannot load the records: ${error.message}`;
  }
}

function renderTransitions(status) {
  renderOnChange('transitions', status.transitions.slice(0, TRANSITIONS_SHOWN), (transitions) => {
    $('transitions').replaceChildren(
      ...transitions.map((transition) => {
        const item = element('li');
        const at = element('time', clockTime(transition.at));
        at.dateTime = transition.at;
        item.append(at, ` ${transition.from} → ${transition.to}: ${transition.reason}`);
        return item;
      }),
    );
    $('transitions-empty').hidden = transitions.length > 0;
  });
}

// ---- charts over a rolling window ----

const samples = []; // { t (seconds), backlog, upstream, local (requests/s), replay (messages/s), syncDone, syncTotal }
let previous = null; // the last status and when it was read, for the request rates

function record(status) {
  const t = Date.now() / 1000;
  let upstream = null;
  let local = null;
  if (previous && t > previous.t) {
    upstream = Math.max(0, (status.requests.upstream - previous.requests.upstream) / (t - previous.t));
    local = Math.max(0, (status.requests.local - previous.requests.local) / (t - previous.t));
  }
  previous = { t, requests: status.requests };
  const { sync } = status;
  samples.push({ t, backlog: status.backlog, upstream, local, replay: status.replay ? status.replay.rate : null, syncDone: sync ? sync.done : null, syncTotal: sync ? sync.total : null });
  while (samples.length > 0 && samples[0].t < t - windowSeconds) samples.shift();
}

/** The minutes before the page opened, as the shim sampled them; without them the charts start empty. */
async function loadHistory() {
  try {
    const response = await fetch('status/history', { cache: 'no-store', signal: AbortSignal.timeout(POLL_TIMEOUT_MS) });
    if (!response.ok) return;
    const history = await response.json();
    windowSeconds = history.windowSeconds;
    samples.push(...history.samples.map((s) => ({ ...s, syncDone: null, syncTotal: null })));
    renderCharts();
  } catch {
    // The polls say when the shim cannot be reached.
  }
}

/** Items synced per second over the last samples of the same sync (the document has no rate of it). */
function recentSyncRate() {
  const last = samples[samples.length - 1];
  const first = samples.find((s) => s.t >= last.t - RATE_WINDOW_SECONDS && s.syncTotal === last.syncTotal && s.syncDone !== null && s.syncDone <= last.syncDone);
  return first && last.t > first.t ? (last.syncDone - first.syncDone) / (last.t - first.t) : null;
}

const charts = [];
// Time axis ticks: whole seconds to minutes, labelled with the time of day.
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300];
const timeOfDay = (seconds) => new Date(seconds * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function chart(id, series, columns) {
  const container = $(id);
  const plot = new uPlot(
    {
      width: Math.max(200, container.clientWidth),
      height: 200,
      scales: { x: { time: true }, y: { range: (_, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [{}, ...series.map((s) => ({ width: 2, points: { show: false }, ...s }))],
      axes: [{ stroke: '#333', space: 90, incrs: TIME_STEPS, values: (_, ticks) => ticks.map(timeOfDay) }, { stroke: '#333', size: 60 }],
      legend: { live: false },
    },
    [[], ...series.map(() => [])],
    container,
  );
  charts.push({ container, plot, columns });
  new ResizeObserver(() => plot.setSize({ width: Math.max(200, container.clientWidth), height: 200 })).observe(container);
}

function setUpCharts() {
  chart('chart-backlog', [{ label: 'backlog', stroke: '#1f4e99', fill: 'rgba(31, 78, 153, 0.12)' }], (s) => [s.backlog]);
  chart(
    'chart-requests',
    [
      { label: 'to the region', stroke: '#1b5e20' },
      { label: 'at the edge', stroke: '#b71c1c', dash: [6, 4] },
    ],
    (s) => [s.upstream, s.local],
  );
  chart('chart-replay', [{ label: 'replay', stroke: '#8a4b00', fill: 'rgba(138, 75, 0, 0.12)' }], (s) => [s.replay]);
}

function renderCharts() {
  if (samples.length === 0) return;
  const times = samples.map((s) => s.t);
  for (const { container, plot, columns } of charts) {
    const rows = samples.map(columns);
    const series = rows[0].map((_, i) => rows.map((r) => r[i]));
    plot.setData([times, ...series]);
    container.dataset.points = String(times.length);
  }
  const last = samples[samples.length - 1];
  setText('chart-backlog-now', count(last.backlog));
  setText('chart-requests-now', `${rate(last.upstream)} to the region, ${rate(last.local)} at the edge`);
  setText('chart-replay-now', rate(last.replay));
}

// ---- polling ----

let failingSince = null;

function render(status) {
  record(status);
  renderMode(status);
  renderUpstream(status);
  renderBacklog(status);
  renderReplay(status);
  renderSync(status);
  renderStorage(status);
  renderSite(status);
  renderRequests(status);
  renderQueues(status);
  renderAgents(status);
  renderConflicts(status);
  renderTransitions(status);
  renderCharts();
}

async function poll() {
  try {
    const response = await fetch('status', { cache: 'no-store', signal: AbortSignal.timeout(POLL_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`the shim answered ${response.status}`);
    render(await response.json());
    failingSince = null;
    setText('connection', 'Live');
    $('connection').className = '';
    setText('updated', `updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    failingSince ??= new Date().toISOString();
    setText('connection', `Cannot reach the shim since ${clockTime(failingSince)}: ${error.message}; retrying`);
    $('connection').className = 'offline-link';
  } finally {
    setTimeout(poll, POLL_INTERVAL_MS);
  }
}

setUpCharts();
loadHistory().then(poll);
