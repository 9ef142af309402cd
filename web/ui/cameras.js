// cameras.js — the cameras page (IT&C): every camera with its health at a glance
// (refreshed on each camera state event, and every 10 s for the figures), and
// adding, editing and deleting the cameras added here. The add and edit form probes
// the camera first and shows what it sends before saving. Passwords are write-only:
// the field stays empty, and an edit that leaves it empty keeps the stored one.

import { T } from './strings.js';
import { api, bindText, data, h, showError, showStatus, startPage } from './app.js';

const tbody = document.querySelector('#cameras tbody');
const statusBox = document.getElementById('status');
const errorBox = document.getElementById('error');
const form = document.getElementById('camera');
const formError = document.getElementById('form-error');
const probeBox = document.getElementById('probe-result');
const heading = document.getElementById('form-heading');
const saveButton = document.getElementById('save');
const cancelButton = document.getElementById('cancel');
const f = {
  id: document.getElementById('f-id'),
  name: document.getElementById('f-name'),
  site: document.getElementById('f-site'),
  url: document.getElementById('f-url'),
  username: document.getElementById('f-username'),
  password: document.getElementById('f-password'),
  live_url: document.getElementById('f-live-url'),
  transport: document.getElementById('f-transport'),
  record: document.getElementById('f-record'),
};
let cameras = [];
let sites = [];
let editing = null; // the id of the camera being edited, or null when adding
let confirming = null; // the id whose deletion awaits confirmation
// State changes arrive as events; the poll refreshes bitrate and frame rate.
const REFRESH_MS = 10000;

/** say shows an outcome (fn gives the text in the active language) and clears errors. */
function say(fn) {
  showStatus(statusBox, fn);
  showError(errorBox, null);
}


function button(key, onClick, cls) {
  const b = h('button', cls, key);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

function bitrate(bps) {
  return bps > 0 ? `${Math.round(bps / 1000)} kbit/s` : '–';
}

function render() {
  const rows = [];
  if (cameras.length === 0) {
    const tr = h('tr');
    const td = h('td', 'muted', 'cameras.empty');
    td.colSpan = 8;
    tr.append(td);
    rows.push(tr);
  }
  for (const c of cameras) {
    const tr = h('tr');
    tr.dataset.camera = c.id;
    const name = h('td');
    name.append(data('div', c.name || c.id), data('div', c.id, 'muted'));
    const state = h('span', 'cam-state', `cameras.state.${c.state}`);
    state.dataset.state = c.state;
    const stateCell = h('td');
    stateCell.append(state);
    if (!c.record) stateCell.append(h('div', 'muted', 'cameras.liveOnly'));
    const actions = h('td');
    if (c.source === 'api') {
      const box = h('div', 'actions');
      box.append(button('cameras.edit', () => edit(c.id)), button('cameras.delete', () => askDelete(c.id)));
      actions.append(box);
    }
    tr.append(name, data('td', c.site_name || c.site), stateCell, data('td', bitrate(c.bitrate_bps), 'nowrap'),
      data('td', c.fps ? c.fps.toFixed(1) : '–'),
      c.reason === 'no_credentials' ? h('td', 'detail', 'cameras.noCredentials') : data('td', c.last_error || '', 'detail'),
      h('td', '', c.source === 'api' ? 'cameras.source.api' : 'cameras.source.config'), actions);
    rows.push(tr);
    if (confirming === c.id) rows.push(confirmRow(c));
  }
  tbody.replaceChildren(...rows);
}

/** confirmRow asks before deleting c, saying its footage stays. */
function confirmRow(c) {
  const tr = h('tr', 'confirm');
  tr.dataset.confirm = c.id;
  const td = h('td');
  td.colSpan = 8;
  const msg = h('p');
  bindText(msg, () => T.cameras.confirmDelete(c.name || c.id));
  const box = h('div', 'actions');
  box.append(button('cameras.delete', () => remove(c), 'primary'), button('common.cancel', () => {
    confirming = null;
    render();
  }));
  td.append(msg, box);
  tr.append(td);
  return tr;
}

function askDelete(id) {
  confirming = id;
  say(null);
  render();
}

async function remove(c) {
  try {
    await api(`/api/v1/cameras/${encodeURIComponent(c.id)}`, { method: 'DELETE' });
    confirming = null;
    if (editing === c.id) resetForm();
    say(() => T.cameras.deleted(c.name || c.id));
    await load();
  } catch (err) {
    say(null);
    showError(errorBox, err);
  }
}

async function load() {
  cameras = await api('/api/v1/cameras');
  if (confirming && !cameras.some((c) => c.id === confirming)) confirming = null;
  render();
}

function fillSites() {
  const keep = f.site.value;
  f.site.replaceChildren(...sites.map((s) => {
    const o = data('option', s.name || s.id);
    o.value = s.id;
    return o;
  }));
  if (keep) f.site.value = keep;
}

function showHeading() {
  bindText(heading, () => (editing ? T.cameras.editHeading(editing) : T.cameras.addHeading));
  bindText(saveButton, () => (editing ? T.cameras.saveChanges : T.cameras.add));
}

/** resetForm empties the form for a new camera. */
function resetForm() {
  editing = null;
  form.reset();
  f.id.disabled = false;
  f.password.removeAttribute('data-i18n-placeholder');
  f.password.placeholder = '';
  cancelButton.hidden = true;
  probeBox.hidden = true;
  showError(formError, null, f);
  showHeading();
}

async function edit(id) {
  try {
    const s = await api(`/api/v1/cameras/${encodeURIComponent(id)}/settings`);
    resetForm();
    editing = id;
    f.id.value = s.id;
    f.id.disabled = true;
    f.name.value = s.name;
    f.site.value = s.site;
    f.url.value = s.url;
    f.username.value = s.username || '';
    f.live_url.value = s.live_url || '';
    f.transport.value = s.transport || 'auto';
    f.record.checked = s.record !== false;
    if (s.password_unreadable) {
      // Stored, but sealed with another secrets key: it must be entered again.
      f.password.dataset.i18nPlaceholder = 'cameras.f.unreadable';
      f.password.placeholder = T.cameras.f.unreadable;
    } else if (s.password_set) {
      // Write-only: the stored password is never sent; empty keeps it.
      f.password.dataset.i18nPlaceholder = 'cameras.f.unchanged';
      f.password.placeholder = T.cameras.f.unchanged;
    }
    cancelButton.hidden = false;
    showHeading();
    say(null);
    f.name.focus();
  } catch (err) {
    showError(errorBox, err);
  }
}

function settings() {
  const body = {
    name: f.name.value.trim(), site: f.site.value, url: f.url.value.trim(), username: f.username.value.trim(),
    live_url: f.live_url.value.trim(), transport: f.transport.value, record: f.record.checked,
  };
  if (f.password.value !== '') body.password = f.password.value;
  if (!editing) body.id = f.id.value.trim();
  return body;
}

async function save(ev) {
  ev.preventDefault();
  saveButton.disabled = true;
  const body = settings();
  try {
    if (editing) {
      await api(`/api/v1/cameras/${encodeURIComponent(editing)}`, { method: 'PUT', body });
      const id = editing;
      say(() => T.cameras.saved(id));
    } else {
      await api('/api/v1/cameras', { method: 'POST', body });
      say(() => T.cameras.added(body.id));
    }
    resetForm();
    await load();
  } catch (err) {
    showError(formError, err, f);
  } finally {
    saveButton.disabled = false;
  }
}

/** probe connects to the camera once and shows what it sends, or why it cannot. */
async function probe() {
  const b = document.getElementById('probe');
  b.disabled = true;
  probeBox.hidden = false;
  probeBox.classList.remove('failed');
  probeBox.replaceChildren(h('span', 'muted', 'cameras.probing'));
  showError(formError, null, f);
  try {
    const body = { url: f.url.value.trim(), username: f.username.value.trim() };
    if (f.password.value !== '') body.password = f.password.value;
    const res = await api('/api/v1/cameras/probe', { method: 'POST', body });
    showProbe(res);
  } catch (err) {
    probeBox.hidden = true;
    showError(formError, err, f);
  } finally {
    b.disabled = false;
  }
}

function showProbe(res) {
  probeBox.dataset.ok = String(res.ok);
  if (!res.ok) {
    probeBox.classList.add('failed');
    const title = h('strong');
    bindText(title, () => T.cameras.reason[res.reason] || T.cameras.reason.failed);
    probeBox.replaceChildren(title, data('div', res.error || '', 'muted'));
    return;
  }
  const r = res.result;
  const dl = h('dl');
  const row = (key, value) => dl.append(h('dt', '', key), value);
  row('cameras.probeResult.codec', data('dd', `${r.codec.toUpperCase().replace('H26', 'H.26')}${r.profile ? ` (${r.profile})` : ''}`));
  row('cameras.probeResult.resolution', data('dd', r.width ? `${r.width}×${r.height}` : '–'));
  row('cameras.probeResult.fps', data('dd', r.fps ? String(r.fps) : '–'));
  const gop = h('dd');
  bindText(gop, () => (r.gop_frames ? T.cameras.probeResult.gopValue(r.gop_frames, r.gop_seconds) : T.cameras.probeResult.gopLong));
  row('cameras.probeResult.gop', gop);
  row('cameras.probeResult.bframes', h('dd', '', r.b_frames ? 'cameras.yes' : 'cameras.no'));
  const audio = r.audio && r.audio.length ? data('dd', r.audio.join(', ')) : h('dd', '', 'cameras.probeResult.noAudio');
  row('cameras.probeResult.audio', audio);
  row('cameras.probeResult.live', h('dd', '', r.live ? 'cameras.probeResult.liveYes' : 'cameras.probeResult.liveNo'));
  probeBox.replaceChildren(h('strong', '', 'cameras.probeOK'), dl);
}

async function init() {
  if (!(await startPage('cameras'))) return;
  sites = await api('/api/v1/sites');
  fillSites();
  resetForm();
  form.addEventListener('submit', save);
  document.getElementById('probe').addEventListener('click', probe);
  cancelButton.addEventListener('click', () => {
    resetForm();
    say(null);
  });
  await load();
  document.documentElement.dataset.ready = 'true';
  const reload = () => load().catch((err) => showError(errorBox, err));
  setInterval(reload, REFRESH_MS);
  let pending = null;
  const es = new EventSource('/api/v1/events');
  es.addEventListener('camera_state', () => {
    if (pending) return; // once, however many events arrive meanwhile
    pending = setTimeout(() => {
      pending = null;
      reload();
    }, 300);
  });
}

init().catch((err) => showError(errorBox, err));
