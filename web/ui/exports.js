// exports.js — signed clip exports (administrators): request one (camera, range in
// Bucharest time, reason), follow its progress, download the clip, its manifest and
// signature, or the bundle with the public key and how to check it.

import { T, bucharestToUTC, fmtDateTime } from './strings.js';
import { ApiError, api, bindText, data, fillRangeFromURL, h, startPage } from './app.js';

const POLL_MS = 1500; // while an export is queued or running

const form = document.getElementById('request');
const tbody = document.querySelector('#exports tbody');
const errorBox = document.getElementById('error');
const statusBox = document.getElementById('status');
const fields = {
  camera: document.getElementById('x-camera'),
  from: document.getElementById('x-from'),
  to: document.getElementById('x-to'),
  reason: document.getElementById('x-reason'),
};
const FILES = ['clip.mp4', 'manifest.json', 'manifest.json.sig', 'bundle.zip'];
let timer = null;

function showError(err) {
  bindText(errorBox, err ? () => err.text() : null);
  errorBox.hidden = !err;
  for (const el of Object.values(fields)) el.removeAttribute('aria-invalid');
  if (err && fields[err.field]) {
    fields[err.field].setAttribute('aria-invalid', 'true');
    fields[err.field].focus();
  }
}

function showStatus(fn) {
  bindText(statusBox, fn);
  statusBox.hidden = !fn;
}

/** readRequest turns the form into the API's body; a bad field is an ApiError naming it. */
function readRequest() {
  const body = { camera: fields.camera.value, reason: fields.reason.value.trim() };
  for (const name of ['from', 'to']) {
    const d = fields[name].value ? bucharestToUTC(fields[name].value) : null;
    if (!d) throw new ApiError(400, T.exports.timeRequired, name);
    body[name] = d.toISOString();
  }
  if (!body.reason) throw new ApiError(400, T.exports.reasonRequired, 'reason');
  return body;
}

function stateCell(x) {
  const td = h('td', 'nowrap');
  td.dataset.state = x.state;
  const label = h('span', 'state');
  bindText(label, () => T.exports.states[x.state] || x.state);
  td.append(label);
  if (x.state === 'running' || x.state === 'queued') {
    const bar = h('progress');
    bar.max = 1;
    bar.value = x.progress || 0;
    const pct = data('span', ` ${Math.floor((x.progress || 0) * 100)} %`);
    td.append(' ', bar, pct);
  }
  if (x.state === 'failed' && x.error) {
    const why = data('div', x.error, 'detail why');
    td.append(why);
  }
  return td;
}

function filesCell(x) {
  const td = h('td', 'files');
  if (!x.files) return td;
  for (const f of FILES) {
    if (!x.files[f]) continue;
    const a = data('a', f);
    a.href = x.files[f];
    a.download = '';
    a.dataset.file = f;
    td.append(a, ' ');
  }
  return td;
}

function render(list) {
  const rows = list.map((x) => {
    const tr = h('tr');
    tr.dataset.export = x.id;
    tr.dataset.state = x.state;
    const created = data('td', '', 'nowrap');
    bindText(created, () => fmtDateTime(x.created));
    const range = data('td', '', 'nowrap');
    bindText(range, () => `${fmtDateTime(x.from)} – ${fmtDateTime(x.to)}`);
    range.title = `${x.from} – ${x.to}`;
    tr.append(created, data('td', x.camera_name || x.camera), range, data('td', x.user),
      data('td', x.reason, 'detail'), stateCell(x), filesCell(x));
    return tr;
  });
  if (rows.length === 0) {
    const tr = h('tr');
    const td = h('td', 'muted', 'exports.empty');
    td.colSpan = 7;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

async function load() {
  clearTimeout(timer);
  let list;
  try {
    list = await api('/api/v1/exports');
  } catch (err) {
    showError(err);
    timer = setTimeout(load, POLL_MS * 4);
    return;
  }
  render(list);
  if (list.some((x) => x.state === 'queued' || x.state === 'running')) timer = setTimeout(load, POLL_MS);
}

async function submit(ev) {
  ev.preventDefault();
  let body;
  try {
    body = readRequest();
  } catch (err) {
    showError(err);
    return;
  }
  const button = document.getElementById('x-submit');
  button.disabled = true;
  try {
    const x = await api('/api/v1/exports', { method: 'POST', body });
    showError(null);
    showStatus(() => T.exports.queued(x.id));
    fields.reason.value = '';
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
  load();
}


async function init() {
  if (!(await startPage('exports'))) return;
  try {
    for (const c of await api('/api/v1/cameras')) {
      const o = data('option', c.name || c.id);
      o.value = c.id;
      fields.camera.append(o);
    }
  } catch (err) {
    showError(err);
  }
  fillRangeFromURL(fields.camera, fields.from, fields.to, 5 * 60 * 1000);
  form.addEventListener('submit', submit);
  await load();
  document.documentElement.dataset.ready = 'true';
}

init().catch(showError);
