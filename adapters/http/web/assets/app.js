// Live status page of the Production Line Monitor.
//
// The page signs in with a key typed into its form (POST /session; the server answers with
// an HttpOnly cookie, so the key is never kept by the page), then shows every equipment, the
// open alarms, and the last hour of a selected machine. One EventSource on /stream keeps the
// equipment and alarms current; a second one, for the selected machine, marks its anomalous
// readings. DOM work is gathered and done once per animation frame, touching only what
// changed.

const SENSOR_TYPES = ['temperature', 'vibration', 'pressure', 'voltage'];
const ALARM_EVENTS = ['alarm.opened', 'alarm.escalated', 'alarm.acknowledged', 'alarm.cleared'];
const STATUSES = ['ONLINE', 'ANOMALY', 'OFFLINE', 'MAINTENANCE'];
const HOUR_MS = 60 * 60 * 1000;
const HISTORY_REFRESH_MS = 5000;
const RAW_LIMIT = 2000; // more raw points than this in the hour: draw per-30 s averages instead
const AVG_INTERVAL = '30s';
const MIN_SPAN_MS = 5 * 60 * 1000; // the narrowest time axis of a chart
const ALARM_PAGE_SIZE = 500;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;
const ACK_BY_STORAGE = 'plm.ackBy'; // who acknowledges: a name, never a key
const SVG = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);

// Unauthorized is an answer 401: no session, or it has ended.
class Unauthorized extends Error {}

// ApiError is any other answer that is not a success, with the API's error code.
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// api sends a request to the service with the session cookie and returns the decoded body
// (null for 204).
async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) throw new Unauthorized('not signed in');
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(res.status, err.code || '', err.message || `the service answered ${res.status}`);
  }
  return data;
}

function query(params) {
  return new URLSearchParams(params).toString();
}

function timeOf(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

// ---------------------------------------------------------------------------------------
// State

const state = {
  signedIn: false,
  equipment: new Map(), // id -> {data, el}
  alarms: new Map(), // id -> {data}: the open alarms
  incidents: new Map(), // incident id -> {data, el}: a line of the list each
  selected: null, // id of the selected equipment
  history: null, // {id, series: Map(type -> [{t, v}]), anomalies: Map(id -> {t, v, type, severity, z}), aggregated}
  stream: null,
  anomalyStream: null,
  reconnectDelay: RECONNECT_MIN_MS,
  reconnectTimer: 0,
  historyTimer: 0,
  sessionTimer: 0,
  historyLoading: false,
  // Each reload notes the generation it started in; an event for an item after that wins
  // over what the reload brings back.
  generation: 0,
  touched: new Map(), // 'e:<id>' or 'a:<id>' -> generation of the last event applied
  gridRendered: false,
};

// What the next animation frame will apply.
const pending = {
  tiles: new Map(), // id -> equipment data, or null to remove
  alarms: new Map(), // id -> alarm data, or null to remove
  charts: false,
};
let frame = 0;

function schedule() {
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  if (pending.tiles.size) applyTiles();
  if (pending.alarms.size) applyAlarms();
  if (pending.charts) {
    pending.charts = false;
    renderCharts();
  }
}

// ---------------------------------------------------------------------------------------
// Equipment grid

function newTile(data) {
  const b = el('button', 'tile');
  b.type = 'button';
  b.dataset.equipmentId = data.id;
  b.setAttribute('aria-pressed', String(state.selected === data.id));
  b.append(el('span', 'tile-id', data.id), el('span', 'tile-name'), el('span', 'tile-status'));
  return b;
}

function paintTile(tile, data, old) {
  if (!old || old.status !== data.status) {
    tile.dataset.status = data.status;
    tile.querySelector('.tile-status').textContent = data.status;
  }
  const name = [data.name, data.line].filter(Boolean).join(' · ');
  if (!old || [old.name, old.line].filter(Boolean).join(' · ') !== name) {
    tile.querySelector('.tile-name').textContent = name;
  }
  if (!old || old.status !== data.status || old.name !== data.name) {
    tile.title = `${data.name || data.id}: ${data.status}`;
  }
}

function applyTiles() {
  const grid = $('grid');
  const added = [];
  for (const [id, data] of pending.tiles) {
    const entry = state.equipment.get(id);
    if (data === null) {
      if (entry) {
        entry.el.remove();
        state.equipment.delete(id);
        if (state.selected === id) closeDetail();
      }
      continue;
    }
    if (entry) {
      paintTile(entry.el, data, entry.data);
      entry.data = data;
      if (state.selected === id) paintDetailHead();
    } else {
      const tile = newTile(data);
      paintTile(tile, data, null);
      state.equipment.set(id, { data, el: tile });
      added.push(id);
    }
  }
  pending.tiles.clear();
  if (added.length) placeTiles(grid, added);
  paintSummary();
  $('grid-empty').hidden = state.equipment.size > 0;
  if (!state.gridRendered && state.equipment.size > 0) {
    state.gridRendered = true;
    performance.mark('plm:grid-rendered');
  }
}

// placeTiles puts new tiles in id order: a few by insertion, many by laying the grid out again
// in one fragment.
function placeTiles(grid, added) {
  if (added.length > 16 || grid.childElementCount === 0) {
    const ids = [...state.equipment.keys()].sort();
    const frag = document.createDocumentFragment();
    for (const id of ids) frag.append(state.equipment.get(id).el);
    grid.append(frag);
    return;
  }
  for (const id of added) {
    const tile = state.equipment.get(id).el;
    let before = null;
    for (const other of grid.children) {
      if (other !== tile && other.dataset.equipmentId > id) {
        before = other;
        break;
      }
    }
    grid.insertBefore(tile, before);
  }
}

function paintSummary() {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const { data } of state.equipment.values()) counts[data.status] = (counts[data.status] || 0) + 1;
  const parts = STATUSES.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s.toLowerCase()}`);
  const n = state.equipment.size;
  $('equipment-summary').textContent = `${n} machine${n === 1 ? '' : 's'}${parts.length ? ': ' + parts.join(', ') : ''}`;
}

async function loadEquipment() {
  const generation = ++state.generation;
  const body = await api('GET', '/equipment');
  if (!state.signedIn) return;
  const seen = new Set();
  for (const e of body.data || []) {
    seen.add(e.id);
    const known = state.equipment.get(e.id);
    if (known && (state.touched.get('e:' + e.id) || 0) > generation) {
      // A status event came in while this list was on its way: it is newer.
      pending.tiles.set(e.id, { ...e, status: (pending.tiles.get(e.id) || known.data).status });
    } else {
      pending.tiles.set(e.id, e);
    }
  }
  for (const id of state.equipment.keys()) {
    if (!seen.has(id)) pending.tiles.set(id, null);
  }
  schedule();
}

let equipmentReload = 0;

// reloadEquipmentSoon gathers the reloads that unknown equipment in events asks for.
function reloadEquipmentSoon() {
  if (equipmentReload) return;
  equipmentReload = setTimeout(() => {
    equipmentReload = 0;
    loadEquipment().catch(failed);
  }, 300);
}

function onStatusEvent(ev) {
  const e = parseEvent(ev);
  if (!e) return;
  const change = e.data || {};
  const id = change.equipmentId || e.equipmentId;
  state.touched.set('e:' + id, state.generation + 1);
  const base = pending.tiles.get(id) || (state.equipment.get(id) || {}).data;
  if (!base) {
    reloadEquipmentSoon();
    return;
  }
  pending.tiles.set(id, { ...base, status: change.status });
  schedule();
}

// ---------------------------------------------------------------------------------------
// Alarms

// The list shows one line a machine's incident: its open alarms together, their sensors
// listed. An alarm from before incidents is its own.

function incidentOf(a) {
  return a.incidentId || a.id;
}

const SEVERITY_RANK = { LOW: 1, MEDIUM: 2, CRITICAL: 3 };

// incidentView sums up the open alarms of one incident (oldest first) as one line.
function incidentView(id, alarms) {
  const active = alarms.filter((a) => a.state === 'ACTIVE');
  let severity = alarms[0].severity;
  for (const a of alarms) if ((SEVERITY_RANK[a.severity] || 0) > (SEVERITY_RANK[severity] || 0)) severity = a.severity;
  const sensors = [];
  for (const a of alarms) {
    const name = a.sensorId ? `${a.sensorType} ${a.sensorId}` : a.sensorType;
    if (!sensors.includes(name)) sensors.push(name);
  }
  const acked = alarms.find((a) => a.acknowledged);
  return {
    id,
    equipmentId: alarms[0].equipmentId,
    sensors: sensors.join(', '),
    severity,
    state: active.length ? 'ACTIVE' : 'ACKNOWLEDGED',
    openedAt: alarms[0].openedAt,
    acknowledged: active.length ? null : acked ? acked.acknowledged : null,
    activeIds: active.map((a) => a.id).join(' '),
  };
}

function newAlarmRow(v) {
  const tr = el('tr');
  tr.dataset.alarmId = v.id;
  const opened = el('time');
  tr.append(
    el('td', 'equipment-cell', v.equipmentId),
    el('td', 'sensor-cell'),
    el('td'),
    el('td'),
    el('td'),
    el('td', 'action-cell'),
  );
  tr.cells[2].append(el('span', 'severity'));
  tr.cells[3].append(el('span', 'state'), el('span', 'ack-by'));
  tr.cells[4].append(opened);
  return tr;
}

function paintAlarmRow(tr, v, old) {
  if (!old || old.sensors !== v.sensors) tr.cells[1].textContent = v.sensors;
  if (!old || old.state !== v.state || old.activeIds !== v.activeIds) {
    tr.dataset.state = v.state;
    tr.querySelector('.state').textContent = v.state;
    const by = v.acknowledged ? `by ${v.acknowledged.by}` : '';
    tr.querySelector('.ack-by').textContent = by;
    tr.querySelector('.ack-by').title = v.acknowledged && v.acknowledged.comment ? v.acknowledged.comment : by;
    const cell = tr.cells[5];
    cell.replaceChildren();
    if (v.state === 'ACTIVE') {
      const b = el('button', 'ack', 'Acknowledge');
      b.type = 'button';
      b.dataset.alarmId = v.id;
      b.dataset.alarmIds = v.activeIds;
      b.setAttribute('aria-label', `Acknowledge the ${v.sensors} alarm of ${v.equipmentId}`);
      cell.append(b);
    }
  }
  if (!old || old.severity !== v.severity) {
    const s = tr.querySelector('.severity');
    s.dataset.severity = v.severity;
    s.textContent = v.severity;
  }
  if (!old || old.openedAt !== v.openedAt) {
    const t = tr.querySelector('time');
    t.dateTime = v.openedAt;
    t.textContent = timeOf(v.openedAt);
    t.title = v.openedAt;
  }
}

function applyAlarms() {
  const body = $('alarm-rows');
  for (const [id, a] of pending.alarms) {
    if (a === null || a.state === 'CLEARED') state.alarms.delete(id);
    else state.alarms.set(id, { data: a });
  }
  pending.alarms.clear();
  const groups = new Map(); // incident id -> its open alarms
  for (const { data } of state.alarms.values()) {
    const key = incidentOf(data);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(data);
  }
  for (const [key, row] of state.incidents) {
    if (!groups.has(key)) {
      row.el.remove();
      state.incidents.delete(key);
    }
  }
  let active = 0;
  for (const [key, alarms] of groups) {
    alarms.sort((x, y) => (x.openedAt < y.openedAt ? -1 : x.openedAt > y.openedAt ? 1 : 0));
    const v = incidentView(key, alarms);
    if (v.state === 'ACTIVE') active++;
    let row = state.incidents.get(key);
    if (row) {
      paintAlarmRow(row.el, v, row.data);
      row.data = v;
      continue;
    }
    row = { el: newAlarmRow(v), data: v };
    paintAlarmRow(row.el, v, null);
    state.incidents.set(key, row);
    // Newest opened first.
    let before = null;
    for (const tr of body.rows) {
      const other = state.incidents.get(tr.dataset.alarmId);
      if (other && other.data.openedAt < v.openedAt) {
        before = tr;
        break;
      }
    }
    body.insertBefore(row.el, before);
  }
  const n = state.incidents.size;
  $('alarms-empty').hidden = n > 0;
  $('alarm-summary').textContent = n ? `${active} active, ${n - active} acknowledged` : '';
  document.title = active ? `(${active}) Production Line Monitor` : 'Production Line Monitor';
}

async function loadAlarms() {
  const generation = ++state.generation;
  const body = await api('GET', '/alarms?' + query({ state: 'ACTIVE,ACKNOWLEDGED', pageSize: ALARM_PAGE_SIZE, sort: 'desc' }));
  if (!state.signedIn) return;
  const seen = new Set();
  for (const a of body.data || []) {
    seen.add(a.id);
    if ((state.touched.get('a:' + a.id) || 0) > generation) continue;
    pending.alarms.set(a.id, a);
  }
  for (const id of state.alarms.keys()) {
    if (!seen.has(id) && (state.touched.get('a:' + id) || 0) <= generation) pending.alarms.set(id, null);
  }
  const total = body.pagination ? body.pagination.total : seen.size;
  $('alarm-message').textContent = total > seen.size ? `Showing the newest ${seen.size} of ${total} open alarms.` : '';
  schedule();
}

function onAlarmEvent(ev) {
  const e = parseEvent(ev);
  if (!e || !e.data || !e.data.id) return;
  state.touched.set('a:' + e.data.id, state.generation + 1);
  pending.alarms.set(e.data.id, e.data);
  schedule();
}

// acknowledge acknowledges every active alarm of the line's incident.
async function acknowledge(button) {
  const ids = (button.dataset.alarmIds || button.dataset.alarmId).split(' ').filter(Boolean);
  const byInput = $('ack-by');
  const by = byInput.value.trim();
  const message = $('alarm-message');
  if (!by) {
    message.textContent = 'Type your name in "Acknowledge as" first.';
    byInput.focus();
    return;
  }
  button.disabled = true;
  try {
    for (const id of ids) {
      const a = await api('POST', `/alarms/${encodeURIComponent(id)}/ack`, { by, comment: '' });
      state.touched.set('a:' + id, state.generation + 1);
      pending.alarms.set(id, a);
    }
    message.textContent = '';
    schedule();
  } catch (err) {
    button.disabled = false;
    schedule();
    if (err instanceof ApiError && (err.code === 'conflict' || err.code === 'not_found')) {
      message.textContent = 'That alarm changed meanwhile; the list is reloaded.';
      loadAlarms().catch(failed);
      return;
    }
    failed(err);
  }
}

// ---------------------------------------------------------------------------------------
// Selected machine: the last hour of each sensor, anomalies marked

function select(id) {
  if (state.selected === id) return;
  closeDetail();
  state.selected = id;
  const entry = state.equipment.get(id);
  if (entry) entry.el.setAttribute('aria-pressed', 'true');
  state.history = { id, series: new Map(), anomalies: new Map(), aggregated: false };
  $('detail').hidden = false;
  paintDetailHead();
  $('detail-meta').textContent = 'Loading the last hour…';
  $('charts').replaceChildren();
  $('charts-empty').hidden = true;
  openAnomalyStream(id);
  refreshHistory();
  state.historyTimer = setInterval(refreshHistory, HISTORY_REFRESH_MS);
}

function closeDetail() {
  if (state.selected === null) return;
  const entry = state.equipment.get(state.selected);
  if (entry) entry.el.setAttribute('aria-pressed', 'false');
  state.selected = null;
  state.history = null;
  clearInterval(state.historyTimer);
  state.historyTimer = 0;
  if (state.anomalyStream) {
    state.anomalyStream.close();
    state.anomalyStream = null;
  }
  $('detail').hidden = true;
}

function paintDetailHead() {
  const entry = state.equipment.get(state.selected);
  if (!entry) return;
  const d = entry.data;
  $('detail-title').textContent = d.name ? `${d.name} (${d.id})` : d.id;
  const chip = $('detail-status');
  chip.dataset.status = d.status;
  chip.textContent = d.status;
}

async function refreshHistory() {
  const id = state.selected;
  if (id === null || state.historyLoading || document.hidden) return;
  state.historyLoading = true;
  try {
    const to = new Date();
    const from = new Date(to.getTime() - HOUR_MS);
    const range = { from: from.toISOString(), to: to.toISOString() };
    const path = `/equipment/${encodeURIComponent(id)}/sensor-history?`;
    let body = await api('GET', path + query({ ...range, limit: RAW_LIMIT }));
    let aggregated = false;
    let points;
    if (body.points.length >= RAW_LIMIT) {
      aggregated = true;
      body = await api('GET', path + query({ ...range, aggregation: 'avg', interval: AVG_INTERVAL }));
      points = body.points.map((p) => ({ type: sensorKey(p), t: Date.parse(p.bucket), v: p.avg }));
    } else {
      points = body.points.map((p) => ({ type: sensorKey(p), t: Date.parse(p.timestamp), v: p.value }));
    }
    const alerts = await api('GET', '/alerts/history?' + query({ equipmentId: id, from: range.from, pageSize: 500, sort: 'desc' }));
    if (state.selected !== id) return;
    const series = new Map();
    for (const p of points) {
      if (!series.has(p.type)) series.set(p.type, []);
      series.get(p.type).push(p);
    }
    const anomalies = new Map();
    for (const a of alerts.data || []) {
      const p = anomalyPoint(a);
      // Ringed while the machine stays selected: it came in live.
      if ((state.history.anomalies.get(a.id) || {}).live) p.live = true;
      anomalies.set(a.id, p);
    }
    // Keep what the stream marked since the request went out.
    for (const [k, v] of state.history.anomalies) if (!anomalies.has(k) && v.t >= from.getTime()) anomalies.set(k, v);
    state.history = { id, series, anomalies, aggregated, from: from.getTime(), to: to.getTime() };
    pending.charts = true;
    schedule();
  } catch (err) {
    failed(err);
  } finally {
    state.historyLoading = false;
  }
}

function anomalyPoint(a) {
  return { type: sensorKey(a), t: Date.parse(a.timestamp), v: a.value, severity: a.severity, z: a.zScore };
}

// sensorKey names a sensor among its machine's: its type, and its id when it has one (a machine
// with two vibration sensors gets a chart for each).
function sensorKey(p) {
  return p.sensorId ? `${p.sensorType} ${p.sensorId}` : p.sensorType;
}

function onAnomalyEvent(ev) {
  const e = parseEvent(ev);
  const h = state.history;
  if (!e || !e.data || !h || e.equipmentId !== h.id) return;
  const p = anomalyPoint(e.data);
  p.live = true;
  h.anomalies.set(e.data.id, p);
  // Draw the reading itself too, until the next refresh brings it.
  if (!h.aggregated) {
    if (!h.series.has(p.type)) h.series.set(p.type, []);
    const s = h.series.get(p.type);
    if (!s.length || s[s.length - 1].t <= p.t) s.push({ type: p.type, t: p.t, v: p.v });
  }
  h.to = Math.max(h.to || 0, p.t);
  pending.charts = true;
  schedule();
}

const CHART = { w: 320, h: 110, left: 38, right: 6, top: 8, bottom: 16 };

function renderCharts() {
  const h = state.history;
  const box = $('charts');
  if (!h || !h.from) return;
  const types = SENSOR_TYPES.filter((t) => h.series.has(t)).concat([...h.series.keys()].filter((t) => !SENSOR_TYPES.includes(t)));
  let marked = 0;
  const figures = types.map((type) => {
    const points = h.series.get(type);
    const marks = [...h.anomalies.values()].filter((a) => a.type === type && a.t >= h.from);
    marked += marks.length;
    return chart(type, points, marks, h.from, h.to);
  });
  box.replaceChildren(...figures);
  $('charts-empty').hidden = figures.length > 0;
  const how = h.aggregated ? `averages per ${AVG_INTERVAL}` : 'every reading';
  $('detail-meta').textContent = `Last hour, ${how}; ${marked} anomalous reading${marked === 1 ? '' : 's'} marked. Updated ${timeOf(new Date(h.to).toISOString())}.`;
}

function chart(type, points, marks, from, to) {
  const fig = el('figure', 'chart');
  fig.dataset.sensorType = type;
  fig.dataset.anomalies = String(marks.length);
  fig.dataset.liveAnomalies = String(marks.filter((m) => m.live).length);
  const values = points.map((p) => p.v).concat(marks.map((m) => m.v));
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  // Less than the hour of data: show what there is (at least 5 minutes), not an empty hour.
  const first = Math.min(...points.map((p) => p.t), ...marks.map((m) => m.t));
  if (Number.isFinite(first)) from = Math.max(from, Math.min(first, to - MIN_SPAN_MS));
  const span = Math.max(to - from, 1);
  const x = (t) => CHART.left + ((t - from) / span) * (CHART.w - CHART.left - CHART.right);
  const y = (v) => CHART.top + (1 - (v - lo) / (hi - lo)) * (CHART.h - CHART.top - CHART.bottom);

  const last = points.length ? points[points.length - 1].v : NaN;
  const caption = el('figcaption');
  const shown = points.map((p) => p.v);
  caption.append(el('span', 'name', type), el('span', 'figures', `last ${fmt(last)} · min ${fmt(Math.min(...shown))} · max ${fmt(Math.max(...shown))}`));

  const s = svg('svg', { viewBox: `0 0 ${CHART.w} ${CHART.h}`, role: 'img', 'aria-label': `${type} over the last hour, ${marks.length} anomalous readings marked` });
  const bottom = CHART.h - CHART.bottom;
  s.append(
    svg('line', { class: 'axis', x1: CHART.left, y1: bottom, x2: CHART.w - CHART.right, y2: bottom }),
    svg('line', { class: 'axis', x1: CHART.left, y1: CHART.top, x2: CHART.left, y2: bottom }),
    tick(CHART.left - 3, CHART.top + 7, fmt(hi), 'end'),
    tick(CHART.left - 3, bottom, fmt(lo), 'end'),
    tick(CHART.left, CHART.h - 3, `-${Math.round(span / 60000)} min`, 'start'),
    tick(CHART.w - CHART.right, CHART.h - 3, 'now', 'end'),
  );
  if (points.length) {
    const line = svg('polyline', { class: 'series', points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ') });
    s.append(line);
  }
  for (const m of marks) {
    const c = svg('circle', { class: m.live ? 'anomaly live' : 'anomaly', cx: x(m.t).toFixed(1), cy: y(m.v).toFixed(1), r: m.live ? 4.5 : 3.5 });
    const title = svg('title');
    title.textContent = `${m.severity} anomaly: ${fmt(m.v)} (z ${fmt(m.z)}) at ${timeOf(new Date(m.t).toISOString())}`;
    c.append(title);
    s.append(c);
  }
  fig.append(caption, s);
  return fig;
}

function tick(x, y, text, anchor) {
  const t = svg('text', { class: 'tick', x, y, 'text-anchor': anchor });
  t.textContent = text;
  return t;
}

function fmt(v) {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  return a >= 1000 || a === 0 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toPrecision(3);
}

// ---------------------------------------------------------------------------------------
// Live streams

function parseEvent(ev) {
  try {
    return JSON.parse(ev.data);
  } catch {
    return null;
  }
}

function setConnection(kind, text) {
  const c = $('connection');
  c.dataset.state = kind;
  c.textContent = text;
}

function openStream() {
  closeStream();
  const es = new EventSource('/stream');
  state.stream = es;
  setConnection('connecting', 'Connecting…');
  es.addEventListener('open', async () => {
    state.reconnectDelay = RECONNECT_MIN_MS;
    // Whatever happened while the stream was down is in the lists: the page is live once
    // they are loaded again (the events that come meanwhile apply on top of them).
    await reloadLists();
    if (state.stream === es && es.readyState === EventSource.OPEN) setConnection('live', 'Live');
  });
  es.addEventListener('error', () => {
    if (state.stream !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The server refused the stream (a session that ended, or an error): ask again later.
      es.close();
      state.stream = null;
      scheduleReconnect();
    } else {
      setConnection('reconnecting', 'Reconnecting…');
    }
  });
  es.addEventListener('equipment.status_changed', onStatusEvent);
  for (const t of ALARM_EVENTS) es.addEventListener(t, onAlarmEvent);
}

function closeStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = 0;
}

function scheduleReconnect() {
  const delay = state.reconnectDelay;
  state.reconnectDelay = Math.min(delay * 2, RECONNECT_MAX_MS);
  setConnection('offline', `Offline, retrying in ${Math.round(delay / 1000)} s`);
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(async () => {
    state.reconnectTimer = 0;
    try {
      await api('GET', '/session');
    } catch (err) {
      if (err instanceof Unauthorized) {
        signedOut('Your session has ended. Sign in again.');
        return;
      }
      scheduleReconnect();
      return;
    }
    if (!state.signedIn) return;
    // Until the stream is back, each attempt also brings the lists up to date.
    reloadLists();
    openStream();
  }, delay);
}

function openAnomalyStream(id) {
  const es = new EventSource('/stream?' + query({ equipmentId: id, types: 'anomaly' }));
  es.addEventListener('anomaly', onAnomalyEvent);
  state.anomalyStream = es;
}

async function reloadLists() {
  try {
    await Promise.all([loadEquipment(), loadAlarms()]);
    if (state.selected !== null) refreshHistory();
  } catch (err) {
    failed(err);
  }
}

// ---------------------------------------------------------------------------------------
// Session

function showNotice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = !text;
}

// failed handles an error of a background request: an ended session signs out, anything
// else is shown.
function failed(err) {
  if (err instanceof Unauthorized) {
    signedOut('Your session has ended. Sign in again.');
    return;
  }
  showNotice(`Could not reach the service: ${err.message}`);
}

async function checkSession() {
  try {
    const s = await api('GET', '/session');
    signedIn(s);
  } catch (err) {
    if (err instanceof Unauthorized) {
      signedOut('');
    } else {
      showNotice(`Could not reach the service: ${err.message}`);
      signedOut('');
    }
  }
}

function signedIn(session) {
  state.signedIn = true;
  showNotice('');
  $('login').hidden = true;
  $('app').hidden = false;
  $('session').hidden = false;
  showSession(session);
  reloadLists();
  openStream();
}

// showSession writes who is signed in and until when, and looks again when the session ends.
function showSession(session) {
  const until = session && session.expiresAt ? ` until ${timeOf(session.expiresAt)}` : '';
  $('session-info').textContent = `Signed in${session && session.scope ? ` (${session.scope})` : ''}${until}`;
  clearTimeout(state.sessionTimer);
  if (session && session.expiresAt) {
    const ms = Date.parse(session.expiresAt) - Date.now() + 1000;
    if (ms > 0 && ms < 2 ** 31) state.sessionTimer = setTimeout(recheckSession, ms);
  }
}

async function recheckSession() {
  try {
    showSession(await api('GET', '/session'));
  } catch (err) {
    failed(err);
  }
}

function signedOut(message) {
  state.signedIn = false;
  closeStream();
  closeDetail();
  clearTimeout(state.sessionTimer);
  state.equipment.clear();
  state.alarms.clear();
  state.incidents.clear();
  state.touched.clear();
  pending.tiles.clear();
  pending.alarms.clear();
  state.gridRendered = false;
  $('grid').replaceChildren();
  $('alarm-rows').replaceChildren();
  $('app').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  setConnection('idle', 'Not connected');
  document.title = 'Production Line Monitor';
  $('login-key').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $('login-key');
  const key = input.value;
  input.value = ''; // the page keeps the key no longer than this request
  const submit = $('login-submit');
  submit.disabled = true;
  $('login-error').textContent = '';
  try {
    await api('POST', '/session', { key });
  } catch (err) {
    $('login-error').textContent = err instanceof Unauthorized ? 'That key was not accepted.' : `Could not sign in: ${err.message}`;
    input.focus();
    return;
  } finally {
    submit.disabled = false;
  }
  await checkSession();
}

async function signOut() {
  try {
    await api('DELETE', '/session');
  } catch (err) {
    if (!(err instanceof Unauthorized)) showNotice(`Could not sign out: ${err.message}`);
  }
  signedOut('');
}

// ---------------------------------------------------------------------------------------
// Wiring

function init() {
  $('login-form').addEventListener('submit', signIn);
  $('logout').addEventListener('click', signOut);
  $('grid').addEventListener('click', (ev) => {
    const tile = ev.target.closest('.tile');
    if (tile) select(tile.dataset.equipmentId);
  });
  $('detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && state.selected !== null) closeDetail();
  });
  $('alarm-rows').addEventListener('click', (ev) => {
    const b = ev.target.closest('button.ack');
    if (b && !b.disabled) acknowledge(b);
  });
  const by = $('ack-by');
  by.value = localStorage.getItem(ACK_BY_STORAGE) || '';
  by.addEventListener('change', () => localStorage.setItem(ACK_BY_STORAGE, by.value.trim()));
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.selected !== null) refreshHistory();
  });
  checkSession();
}

init();
