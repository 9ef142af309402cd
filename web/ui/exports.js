// exports.js — signed clip exports (administrators): request one (camera, range in
// Bucharest time, reason), follow its progress, download the clip, its manifest and
// signature, or the bundle with the public key and how to check it; delete a finished
// export's files with a reason (the export stays listed, marked deleted).

import { T, bucharestToUTC, fmtDateTime } from './strings.js';
import {
  ApiError, api, bindText, data, fillRangeFromURL, grantedOnly, h, showError as showFieldError,
  showStatus as showPageStatus, startPage,
} from './app.js';

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
let list = [];
let confirming = null; // the id whose deletion awaits its reason
let deleteReason = ''; // what was typed, kept across re-renders

/** showError shows err (an ApiError, or null) and marks the field of marks it names. */
const showError = (err, marks = fields) => showFieldError(errorBox, err, { ...fields, ...marks });
const showStatus = (fn) => showPageStatus(statusBox, fn);

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
  if (x.state === 'deleted') {
    const by = h('div', 'detail deleted-by');
    bindText(by, () => T.exports.deletedBy(fmtDateTime(x.deleted),
      x.deleted_by === 'service' ? T.exports.byService : x.deleted_by, x.delete_reason));
    td.append(by);
  }
  return td;
}

/** deleteRow asks for the reason before deleting x's files. */
function deleteRow(x) {
  const tr = h('tr', 'confirm');
  tr.dataset.confirm = x.id;
  const td = h('td');
  td.colSpan = 7;
  const f = h('form', 'row');
  f.noValidate = true;
  const field = h('div', 'field wide');
  const label = h('label', '', 'exports.deleteReason');
  const input = h('input');
  input.id = 'x-delete-reason';
  label.htmlFor = input.id;
  input.maxLength = 1000;
  input.autocomplete = 'off';
  input.value = deleteReason;
  input.dataset.i18nPlaceholder = 'exports.deleteReasonHint';
  input.placeholder = T.exports.deleteReasonHint;
  input.addEventListener('input', () => { deleteReason = input.value; });
  field.append(label, input);
  const ok = h('button', 'primary', 'exports.deleteConfirm');
  ok.type = 'submit';
  const cancel = h('button', '', 'common.cancel');
  cancel.type = 'button';
  cancel.addEventListener('click', () => {
    confirming = null;
    render();
  });
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    remove(x, input);
  });
  f.append(field, ok, cancel);
  td.append(f, h('p', 'muted', 'exports.deleteHelp'));
  tr.append(td);
  setTimeout(() => input.focus());
  return tr;
}

async function remove(x, input) {
  const reason = deleteReason.trim();
  if (!reason) {
    showError(new ApiError(400, T.exports.deleteReasonRequired, 'reason'), { reason: input });
    return;
  }
  try {
    await api(`/api/v1/exports/${encodeURIComponent(x.id)}`, { method: 'DELETE', body: { reason } });
    confirming = null;
    deleteReason = '';
    showError(null);
    showStatus(() => T.exports.deletedNote(x.id));
  } catch (err) {
    showError(err, { reason: input });
  }
  load();
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

function render() {
  const rows = [];
  for (const x of list) {
    const tr = h('tr');
    tr.dataset.export = x.id;
    tr.dataset.state = x.state;
    const created = data('td', '', 'nowrap');
    bindText(created, () => fmtDateTime(x.created));
    const range = data('td', '', 'nowrap');
    bindText(range, () => `${fmtDateTime(x.from)} – ${fmtDateTime(x.to)}`);
    range.title = `${x.from} – ${x.to}`;
    const files = filesCell(x);
    if (x.state === 'done' || x.state === 'failed') {
      const del = h('button', '', 'exports.delete');
      del.type = 'button';
      del.dataset.delete = x.id;
      del.addEventListener('click', () => {
        if (confirming !== x.id) deleteReason = '';
        confirming = x.id;
        showStatus(null);
        render();
      });
      files.append(del);
    }
    tr.append(created, data('td', x.camera_name || x.camera), range, data('td', x.user),
      data('td', x.reason, 'detail'), stateCell(x), files);
    rows.push(tr);
    if (confirming === x.id) rows.push(deleteRow(x));
  }
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
  try {
    list = await api('/api/v1/exports');
  } catch (err) {
    showError(err);
    timer = setTimeout(load, POLL_MS * 4);
    return;
  }
  if (confirming && !list.some((x) => x.id === confirming && (x.state === 'done' || x.state === 'failed'))) {
    confirming = null;
  }
  render();
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
  const me = await startPage('exports');
  if (!me) return;
  try {
    for (const c of grantedOnly(me, await api('/api/v1/cameras'))) {
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
