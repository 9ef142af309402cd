// holds.js — evidence holds (administrators): hold a camera's footage over a range in
// Bucharest time, so that no retention policy deletes it; list the holds; release one
// with a reason.

import { T, bucharestToUTC, fmtDateTime } from './strings.js';
import {
  ApiError, api, bindText, data, fillRangeFromURL, grantedOnly, h, showError as showFieldError, showStatus, startPage,
} from './app.js';

const form = document.getElementById('request');
const tbody = document.querySelector('#holds tbody');
const errorBox = document.getElementById('error');
const statusBox = document.getElementById('status');
const fields = {
  cameras: document.getElementById('h-camera'),
  from: document.getElementById('h-from'),
  to: document.getElementById('h-to'),
  expires: document.getElementById('h-expires'),
  reason: document.getElementById('h-reason'),
};
const names = new Map(); // camera id -> name
let holds = [];
let releasing = null; // the hold whose release form is open: { id, row }

const showError = (box, err, marks = fields) => showFieldError(box, err, marks);
const say = (fn) => showStatus(statusBox, fn);

/** readRequest turns the form into the API's body; a bad field is an ApiError naming it. */
function readRequest() {
  const body = { cameras: [fields.cameras.value], reason: fields.reason.value.trim() };
  for (const name of ['from', 'to']) {
    const d = fields[name].value ? bucharestToUTC(fields[name].value) : null;
    if (!d) throw new ApiError(400, T.holds.timeRequired, name);
    body[name] = d.toISOString();
  }
  if (fields.expires.value) {
    const d = bucharestToUTC(fields.expires.value);
    if (!d) throw new ApiError(400, T.holds.timeRequired, 'expires');
    body.expires = d.toISOString();
  }
  if (!body.reason) throw new ApiError(400, T.holds.reasonRequired, 'reason');
  return body;
}

function camerasOf(x) {
  if (x.site) return () => T.holds.site(x.site);
  return () => x.cameras.map((id) => names.get(id) || id).join(', ');
}

function render() {
  const rows = [];
  for (const x of holds) {
    const tr = h('tr');
    tr.dataset.hold = x.id;
    tr.dataset.status = x.status;
    const created = data('td', '', 'nowrap');
    bindText(created, () => fmtDateTime(x.created));
    const cams = data('td', '');
    bindText(cams, camerasOf(x));
    const range = data('td', '', 'nowrap');
    bindText(range, () => `${fmtDateTime(x.from)} – ${fmtDateTime(x.to)}`);
    range.title = `${x.from} – ${x.to}`;
    const state = h('td');
    const label = h('span', 'state');
    bindText(label, () => T.holds.states[x.status] || x.status);
    state.append(label);
    if (x.status === 'active' && x.expires) {
      const until = data('div', '', 'detail');
      bindText(until, () => T.holds.until(fmtDateTime(x.expires)));
      state.append(until);
    }
    if (x.status === 'released') {
      const why = data('div', '', 'detail why');
      bindText(why, () => T.holds.releasedBy(x.released_by, fmtDateTime(x.released), x.release_reason));
      state.append(why);
    }
    const actions = h('td');
    if (x.status !== 'released') {
      const b = h('button', 'release', 'holds.release');
      b.type = 'button';
      b.addEventListener('click', () => openRelease(x));
      actions.append(b);
    }
    tr.append(created, cams, range, data('td', x.reason, 'detail'), data('td', x.by), state, actions);
    rows.push(tr);
    if (releasing && releasing.id === x.id) rows.push(releasing.row);
  }
  if (rows.length === 0) {
    const tr = h('tr');
    const td = h('td', 'muted', 'holds.empty');
    td.colSpan = 7;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

/** openRelease opens, under x's row, the form that asks why it is released. */
function openRelease(x) {
  const tr = h('tr', 'editor');
  tr.dataset.release = x.id;
  const td = h('td');
  td.colSpan = 7;
  tr.append(td);
  const err = h('div', 'error');
  err.setAttribute('role', 'alert');
  err.hidden = true;
  const field = h('div', 'field wide');
  const input = h('input');
  input.id = `release-reason-${x.id}`;
  input.maxLength = 1000;
  input.autocomplete = 'off';
  const label = h('label', '', 'holds.releaseReason');
  label.htmlFor = input.id;
  field.append(label, input);
  const confirm = h('button', 'primary', 'holds.releaseConfirm');
  confirm.type = 'button';
  const cancel = h('button', '', 'common.cancel');
  cancel.type = 'button';
  cancel.addEventListener('click', () => {
    releasing = null;
    render();
  });
  const bar = h('div', 'row');
  bar.append(field, confirm, cancel);
  td.append(err, bar);
  confirm.addEventListener('click', async () => {
    const reason = input.value.trim();
    if (!reason) {
      showError(err, new ApiError(400, T.holds.releaseReasonRequired, 'reason'), { reason: input });
      return;
    }
    confirm.disabled = true;
    try {
      await api(`/api/v1/holds/${encodeURIComponent(x.id)}`, { method: 'DELETE', body: { reason } });
      releasing = null;
      say(() => T.holds.released(x.id));
      await load();
    } catch (e) {
      showError(err, e, { reason: input });
    } finally {
      confirm.disabled = false;
    }
  });
  releasing = { id: x.id, row: tr };
  say(null);
  render();
  setTimeout(() => input.focus());
}

async function load() {
  holds = await api('/api/v1/holds');
  if (releasing && !holds.some((x) => x.id === releasing.id && x.status !== 'released')) releasing = null;
  render();
}

async function submit(ev) {
  ev.preventDefault();
  let body;
  try {
    body = readRequest();
  } catch (err) {
    showError(errorBox, err);
    return;
  }
  const button = document.getElementById('h-submit');
  button.disabled = true;
  try {
    const x = await api('/api/v1/holds', { method: 'POST', body });
    showError(errorBox, null);
    say(() => T.holds.created(x.id));
    fields.reason.value = '';
    await load();
  } catch (err) {
    showError(errorBox, err);
  } finally {
    button.disabled = false;
  }
}


async function init() {
  const me = await startPage('holds');
  if (!me) return;
  try {
    for (const c of grantedOnly(me, await api('/api/v1/cameras'))) {
      names.set(c.id, c.name || c.id);
      const o = data('option', c.name || c.id);
      o.value = c.id;
      fields.cameras.append(o);
    }
  } catch (err) {
    showError(errorBox, err);
  }
  fillRangeFromURL(fields.cameras, fields.from, fields.to, 60 * 60 * 1000);
  form.addEventListener('submit', submit);
  await load();
  document.documentElement.dataset.ready = 'true';
}

init().catch((err) => showError(errorBox, err));
