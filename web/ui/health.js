// health.js — the health page (IT&C): the service summary (cameras by state, spool,
// disk, store, last retention run and state backup, alerts firing) and each camera's
// figures. It reloads every few seconds, and at once when a camera changes state
// (GET /api/v1/events).

import { T, fmtDateTime, fmtTime } from './strings.js';
import { api, bindText, data, h, startPage } from './app.js';

const tbody = document.querySelector('#cameras tbody');
const errorBox = document.getElementById('error');
const REFRESH_MS = 5000;
const el = (id) => document.getElementById(id);

function showError(err) {
  bindText(errorBox, err ? () => err.text() : null);
  errorBox.hidden = !err;
}

function bytes(n) {
  if (n == null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

const num = (v, digits = 0) => (v == null ? '–' : Number(v).toFixed(digits));

/** run shows a periodic job's last run: when, and whether it went well. */
function showRun(dd, run) {
  dd.replaceChildren();
  if (!run) {
    dd.append(h('span', 'muted', 'health.never'));
    return;
  }
  const ok = h('span', run.ok ? 'is-ok' : 'is-bad', run.ok ? 'health.runOK' : 'health.runFailed');
  dd.append(data('span', fmtDateTime(run.at) + ' '), ok);
  if (run.detail) dd.append(data('div', run.detail, 'muted'));
}

function renderService(s) {
  const st = el('s-status');
  st.replaceChildren(h('span', s.status === 'ok' ? 'is-ok' : 'is-bad', s.status === 'ok' ? 'health.ok' : 'health.degraded'));
  if (s.cause) {
    const c = h('div', 'muted');
    bindText(c, () => T.health.cause[s.cause] || s.cause);
    st.append(c);
  }
  st.dataset.status = s.status;
  const by = s.cameras_by_state || {};
  const cams = el('s-cameras');
  cams.replaceChildren();
  for (const state of ['online', 'connecting', 'stalled', 'offline']) {
    const span = h('span', 'cam-state');
    span.dataset.state = state;
    bindText(span, () => `${T.health.state[state]}: ${by[state] || 0}  `);
    cams.append(span);
  }
  const spool = el('s-spool');
  spool.replaceChildren(data('span', s.spool_max_bytes
    ? `${bytes(s.spool_bytes)} / ${bytes(s.spool_max_bytes)} (${Math.round((100 * s.spool_bytes) / s.spool_max_bytes)}%)`
    : bytes(s.spool_bytes)));
  if (s.spool_full) spool.append(h('span', 'is-bad', 'health.spoolFull'));
  el('s-disk').replaceChildren(data('span', bytes(s.disk_free_bytes)));
  el('s-store').replaceChildren(h('span', s.store_reachable ? 'is-ok' : 'is-bad',
    s.store_reachable ? 'health.reachable' : 'health.unreachable'));
  showRun(el('s-retention'), s.last_retention);
  showRun(el('s-backup'), s.last_state_backup);
  const alerts = el('s-alerts');
  const a = document.createElement('a');
  a.href = '/ui/alerts.html';
  a.className = s.alerts_firing ? 'is-bad' : '';
  bindText(a, () => T.health.firing(s.alerts_firing));
  alerts.replaceChildren(a);
}

function renderCameras(cams) {
  const rows = cams.map((c) => {
    const tr = h('tr');
    tr.dataset.camera = c.id;
    tr.dataset.state = c.state;
    const name = h('td');
    name.append(data('div', c.name || c.id), data('div', c.id, 'muted'));
    const state = h('td');
    const badge = h('span', 'cam-state', `health.state.${c.state}`);
    badge.dataset.state = c.state;
    state.append(badge);
    if (c.reason) {
      const r = h('div', 'muted');
      r.dataset.reason = c.reason;
      bindText(r, () => T.health.reason[c.reason] || c.reason);
      state.append(r);
    }
    if (c.since) {
      const since = h('div', 'muted');
      bindText(since, () => T.health.since(fmtDateTime(c.since)));
      state.append(since);
    }
    if (!c.record) state.append(h('div', 'muted', 'health.liveOnly'));
    const gaps = h('td');
    const b = h('button', 'gaps-toggle', openGaps.has(c.id) ? 'health.gapsHide' : 'health.gapsShow');
    b.type = 'button';
    b.addEventListener('click', () => toggleGaps(c.id));
    gaps.append(b);
    const clock = data('td', c.clock_offset_s == null ? '–' : `${c.clock_offset_s >= 0 ? '+' : ''}${c.clock_offset_s.toFixed(1)} s`, 'num');
    if (c.clock_offset_s != null && Math.abs(c.clock_offset_s) > 60) clock.classList.add('is-bad');
    tr.append(name, state,
      data('td', c.bitrate_bps > 0 ? `${Math.round(c.bitrate_bps / 1000)} kbit/s` : '–', 'num'),
      data('td', c.fps ? c.fps.toFixed(1) : '–', 'num'),
      data('td', c.gop ? String(c.gop) : '–', 'num'),
      data('td', c.last_keyframe ? fmtTime(c.last_keyframe) : '–', 'num'),
      data('td', num(c.reconnects), 'num'), data('td', num(c.dropped_frames), 'num'),
      data('td', num(c.rtp_packets_lost), 'num'), data('td', num(c.undecodable), 'num'),
      data('td', c.recording_lag_s == null ? '–' : `${c.recording_lag_s.toFixed(2)} s`, 'num'), clock, gaps);
    if (c.last_error && c.state !== 'online') {
      tr.title = c.last_error;
    }
    return openGaps.has(c.id) ? [tr, gapsRow(c.id)] : [tr];
  }).flat();
  if (rows.length === 0) {
    const tr = h('tr');
    const td = h('td', 'muted', 'health.noCameras');
    td.colSpan = 13;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

// The cameras whose gaps are shown, with the gaps last read (null while loading).
const openGaps = new Map();

async function toggleGaps(id) {
  if (openGaps.has(id)) {
    openGaps.delete(id);
  } else {
    openGaps.set(id, null);
    await readGaps(id);
  }
  await load();
}

async function readGaps(id) {
  const to = new Date();
  const from = new Date(to.getTime() - 24 * 3600 * 1000);
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
  const r = await api(`/api/v1/cameras/${encodeURIComponent(id)}/gaps?${q}`);
  if (openGaps.has(id)) openGaps.set(id, r.gaps);
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** gapsRow lists a camera's recording gaps of the last 24 hours, with their causes. */
function gapsRow(id) {
  const tr = h('tr', 'gaps');
  tr.dataset.gapsOf = id;
  const td = h('td');
  td.colSpan = 13;
  const list = openGaps.get(id);
  if (list == null) {
    td.append(h('span', 'muted', 'common.loading'));
  } else if (list.length === 0) {
    td.append(h('span', 'muted', 'health.noGaps'));
  } else {
    const t = h('table', 'data');
    const head = h('tr');
    for (const k of ['start', 'end', 'length', 'cause']) head.append(h('th', '', `health.gap.${k}`));
    const thead = h('thead');
    thead.append(head);
    const body = h('tbody');
    for (const g of list.slice().reverse()) {
      const row = h('tr');
      row.dataset.cause = g.cause;
      const end = g.end ? data('td', fmtDateTime(g.end)) : h('td', 'is-bad', 'health.gapOngoing');
      const len = data('td', duration((g.end ? Date.parse(g.end) : Date.now()) - Date.parse(g.start)), 'num');
      const cause = h('td');
      bindText(cause, () => T.health.gapCause[g.cause] || g.cause);
      row.append(data('td', fmtDateTime(g.start)), end, len, cause);
      body.append(row);
    }
    t.append(thead, body);
    td.append(h('div', 'muted', 'health.gapsHeading'), t);
  }
  tr.append(td);
  return tr;
}

async function load() {
  const s = await api('/api/v1/health');
  await Promise.all([...openGaps.keys()].map((id) => readGaps(id).catch(() => {})));
  renderService(s);
  renderCameras(s.cameras || []);
  showError(null);
}

let pending = null;
/** soon reloads once shortly, however many events arrive meanwhile. */
function soon() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    load().catch(showError);
  }, 300);
}

async function init() {
  if (!(await startPage('health'))) return;
  await load();
  document.documentElement.dataset.ready = 'true';
  setInterval(() => load().catch(showError), REFRESH_MS);
  const es = new EventSource('/api/v1/events');
  es.addEventListener('camera_state', soon);
  es.addEventListener('alert', soon);
  es.addEventListener('retention_run', soon);
}

init().catch(showError);
