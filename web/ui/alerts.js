// alerts.js — the alerts page (IT&C): the alerts firing now, the latest of the
// history, and the rules: those of the configuration file (read only) and those added
// here, which can be deleted. It reloads when an alert fires or resolves
// (GET /api/v1/events) and every few seconds.

import { T, fmtDateTime } from './strings.js';
import { api, bindText, data, h, showError, showStatus, startPage } from './app.js';

const el = (id) => document.getElementById(id);
const statusBox = el('status');
const errorBox = el('error');
const form = el('rule');
const formError = el('form-error');
const f = {
  id: el('f-id'),
  kind: el('f-kind'),
  camera: el('f-camera'),
  for_s: el('f-for'),
  threshold: el('f-threshold'),
  high: el('f-high'),
  webhook: el('f-webhook'),
};
const REFRESH_MS = 5000;
let cameras = [];

/** say shows an outcome (fn gives the text in the active language) and clears errors. */
function say(fn) {
  showStatus(statusBox, fn);
  showError(errorBox, null);
}


function kindCell(kind) {
  const td = h('td');
  bindText(td, () => T.alerts.kind[kind] || kind);
  return td;
}

function cameraCell(id) {
  if (!id) return h('td', 'muted', 'alerts.service');
  const c = cameras.find((x) => x.id === id);
  return data('td', c && c.name ? `${c.name} (${id})` : id);
}

function emptyRow(key, cols) {
  const tr = h('tr');
  const td = h('td', 'muted', key);
  td.colSpan = cols;
  tr.append(td);
  return tr;
}

function renderAlerts(active, recent) {
  const a = active.map((x) => {
    const tr = h('tr');
    tr.dataset.rule = x.rule;
    tr.dataset.camera = x.camera || '';
    tr.append(kindCell(x.kind), cameraCell(x.camera), data('td', fmtDateTime(x.started), 'nowrap'),
      data('td', x.detail || '', 'detail'), data('td', x.rule));
    return tr;
  });
  el('active').tBodies[0].replaceChildren(...(a.length ? a : [emptyRow('alerts.noneActive', 5)]));
  const r = recent.map((x) => {
    const tr = h('tr');
    tr.dataset.rule = x.rule;
    tr.dataset.status = x.status;
    const resolved = x.resolved ? data('td', fmtDateTime(x.resolved), 'nowrap') : h('td', 'is-bad', 'alerts.firing');
    tr.append(kindCell(x.kind), cameraCell(x.camera), data('td', fmtDateTime(x.started), 'nowrap'), resolved,
      data('td', x.detail || '', 'detail'), data('td', x.rule));
    return tr;
  });
  el('recent').tBodies[0].replaceChildren(...(r.length ? r : [emptyRow('alerts.noneRecent', 6)]));
}

/** threshold says a rule's threshold in its kind's unit. */
function threshold(r) {
  switch (r.kind) {
    case 'recording_lag':
    case 'clock_offset':
      return `${r.threshold} s`;
    case 'spool_usage':
      return `${Math.round(r.threshold * 100)}%`;
    case 'tamper':
      return r.high ? `< ${Math.round(r.threshold * 100)}% · > ${r.high}×` : `< ${Math.round(r.threshold * 100)}%`;
    default:
      return '–';
  }
}

function renderRules(rules) {
  const rows = rules.map((r) => {
    const tr = h('tr');
    tr.dataset.rule = r.id;
    const actions = h('td');
    if (r.source === 'api') {
      const b = h('button', '', 'alerts.delete');
      b.type = 'button';
      b.addEventListener('click', () => remove(r.id));
      actions.append(b);
    }
    tr.append(data('td', r.id), kindCell(r.kind), r.camera ? cameraCell(r.camera) : h('td', 'muted', 'alerts.allCameras'),
      data('td', `${r.for_s} s`, 'num'), data('td', threshold(r), 'num'),
      h('td', '', r.source === 'api' ? 'alerts.source.api' : 'alerts.source.config'), actions);
    return tr;
  });
  el('rules').tBodies[0].replaceChildren(...(rows.length ? rows : [emptyRow('alerts.noRules', 7)]));
}

async function load() {
  const [alerts, rules] = await Promise.all([api('/api/v1/alerts?limit=50'), api('/api/v1/alerts/rules')]);
  renderAlerts(alerts.active, alerts.recent);
  renderRules(rules);
}

async function remove(id) {
  try {
    await api(`/api/v1/alerts/rules/${encodeURIComponent(id)}`, { method: 'DELETE' });
    say(() => T.alerts.deleted(id));
    await load();
  } catch (err) {
    say(null);
    showError(errorBox, err);
  }
}

const PER_CAMERA = ['camera_offline', 'tamper', 'recording_lag', 'clock_offset'];

/** kindChanged shows the fields the chosen kind uses. */
function kindChanged() {
  const kind = f.kind.value;
  f.camera.disabled = !PER_CAMERA.includes(kind);
  f.threshold.closest('.field').hidden = !['recording_lag', 'clock_offset', 'spool_usage', 'tamper'].includes(kind);
  f.high.closest('.field').hidden = kind !== 'tamper';
  const hint = el('threshold-hint');
  hint.dataset.i18n = `alerts.thresholdHint.${kind}`;
  hint.textContent = T.alerts.thresholdHint[kind] || '';
}

async function save(ev) {
  ev.preventDefault();
  const kind = f.kind.value;
  const body = { kind, for_s: Number(f.for_s.value || 0) };
  if (PER_CAMERA.includes(kind) && f.camera.value) body.camera = f.camera.value;
  if (!f.threshold.closest('.field').hidden && f.threshold.value !== '') body.threshold = Number(f.threshold.value);
  if (!f.high.closest('.field').hidden && f.high.value !== '') body.high = Number(f.high.value);
  if (f.webhook.value.trim()) body.webhook = f.webhook.value.trim();
  const id = f.id.value.trim();
  try {
    if (!id) throw Object.assign(new Error(), { field: 'id', text: () => T.alerts.add.idRequired });
    await api(`/api/v1/alerts/rules/${encodeURIComponent(id)}`, { method: 'PUT', body });
    showError(formError, null, f);
    form.reset();
    kindChanged();
    say(() => T.alerts.saved(id));
    await load();
  } catch (err) {
    showError(formError, err, f);
  }
}

function fillCameras() {
  const all = h('option', '', 'alerts.allCameras');
  all.value = '';
  f.camera.replaceChildren(all, ...cameras.map((c) => {
    const o = data('option', c.name ? `${c.name} (${c.id})` : c.id);
    o.value = c.id;
    return o;
  }));
}

let pending = null;
function soon() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    load().catch((err) => showError(errorBox, err));
  }, 300);
}

async function init() {
  if (!(await startPage('alerts'))) return;
  cameras = await api('/api/v1/cameras');
  fillCameras();
  kindChanged();
  f.kind.addEventListener('change', kindChanged);
  form.addEventListener('submit', save);
  await load();
  document.documentElement.dataset.ready = 'true';
  setInterval(() => load().catch((err) => showError(errorBox, err)), REFRESH_MS);
  const es = new EventSource('/api/v1/events');
  es.addEventListener('alert', soon);
}

init().catch((err) => showError(errorBox, err));
