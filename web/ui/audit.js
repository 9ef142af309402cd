// audit.js — the audit trail (administrators): filters, pages by the API's cursor,
// times in Bucharest, and the same filters as a CSV download.

import { T, bucharestToUTC, fmtDateTime, utcToBucharestInput } from './strings.js';
import { ApiError, api, bindText, data, h, startPage } from './app.js';

// Entries per page: ?limit= in the address (1–1000), else 100.
const PAGE_SIZE = pageSize(new URLSearchParams(location.search).get('limit'));
const CSV_LIMIT = 10000; // the API's largest page

const form = document.getElementById('filters');
const tbody = document.querySelector('#entries tbody');
const errorBox = document.getElementById('error');
const fields = {
  from: document.getElementById('f-from'),
  to: document.getElementById('f-to'),
  user: document.getElementById('f-user'),
  camera: document.getElementById('f-camera'),
  action: document.getElementById('f-action'),
};
const cameraNames = new Map(); // id -> name
let filters = new URLSearchParams(); // as the API takes them
let cursors = ['']; // the cursor of each page seen so far; '' is the first
let pageIndex = 0;
let next = null;
let loads = 0; // numbers the page loads: only the latest one may show

/** readFilters turns the form into API parameters (times in Bucharest -> RFC 3339). */
function readFilters() {
  const q = new URLSearchParams();
  for (const name of ['from', 'to']) {
    const v = fields[name].value;
    if (!v) continue;
    const d = bucharestToUTC(v);
    if (!d) throw new ApiError(400, '', name);
    q.set(name, d.toISOString());
  }
  for (const name of ['user', 'camera', 'action']) {
    const v = fields[name].value.trim();
    if (v) q.set(name, v);
  }
  return q;
}

function showError(err) {
  bindText(errorBox, err ? () => err.text() : null);
  errorBox.hidden = !err;
  for (const el of Object.values(fields)) el.removeAttribute('aria-invalid');
  if (err && fields[err.field]) fields[err.field].setAttribute('aria-invalid', 'true');
}

/** detailText shows an entry's detail object as "key: value" pairs. */
function detailText(d) {
  if (d == null) return '';
  if (typeof d !== 'object') return String(d);
  return Object.entries(d).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
}

function actionCell(action) {
  if (Object.hasOwn(T.audit.actions, action)) {
    const td = h('td');
    bindText(td, () => T.audit.actions[action]); // not data-i18n: the codes have dots
    td.dataset.action = action;
    return td;
  }
  const td = data('td', action); // an action this page does not know yet: its code
  td.dataset.action = action;
  return td;
}

function render(entries) {
  const rows = entries.map((e) => {
    const tr = h('tr');
    tr.dataset.seq = String(e.seq);
    const time = data('td', '', 'nowrap');
    bindText(time, () => fmtDateTime(e.time));
    time.title = e.time;
    const cam = e.camera ? cameraNames.get(e.camera) || e.camera : '';
    tr.append(time, data('td', e.user || ''), data('td', e.actor || ''), actionCell(e.action),
      data('td', cam), data('td', detailText(e.detail), 'detail'));
    return tr;
  });
  if (rows.length === 0) {
    const tr = h('tr');
    const td = h('td', 'muted', 'audit.empty');
    td.colSpan = 6;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
  bindText(document.getElementById('page-label'), () => T.audit.page(pageIndex + 1));
  document.getElementById('first').disabled = pageIndex === 0;
  document.getElementById('prev').disabled = pageIndex === 0;
  document.getElementById('next').disabled = !next;
}

async function loadPage(i) {
  const q = new URLSearchParams(filters);
  q.set('limit', String(PAGE_SIZE));
  if (cursors[i]) q.set('next', cursors[i]);
  const mine = ++loads;
  let res;
  try {
    res = await api(`/api/v1/audit?${q}`);
  } catch (err) {
    if (mine === loads) showError(err);
    return;
  }
  if (mine !== loads) return; // filters changed meanwhile
  showError(null);
  pageIndex = i;
  next = res.next || null;
  cursors = cursors.slice(0, i + 1);
  if (next) cursors.push(next);
  render(res.entries || []);
}

function apply() {
  try {
    filters = readFilters();
  } catch (err) {
    showError(err);
    return;
  }
  const csv = new URLSearchParams(filters);
  csv.set('format', 'csv');
  csv.set('limit', String(CSV_LIMIT));
  document.getElementById('csv').href = `/api/v1/audit?${csv}`;
  // The filters stay in the address, so a reload or a shared link shows the same.
  const url = new URL(location.href);
  const keep = [...new URLSearchParams(location.search)].filter(([k]) => k === 'lang' || k === 'limit');
  url.search = new URLSearchParams([...filters, ...keep]).toString();
  history.replaceState(null, '', url);
  cursors = [''];
  loadPage(0);
}

function pageSize(v) {
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : 100;
}

/** fillFromURL puts ?from=&to=&user=&camera=&action= of the address in the form. */
function fillFromURL() {
  const q = new URLSearchParams(location.search);
  for (const name of ['user', 'camera', 'action']) {
    const v = q.get(name);
    if (!v) continue;
    const el = fields[name];
    if (el.tagName === 'SELECT' && ![...el.options].some((o) => o.value === v)) {
      el.append(data('option', v)); // not in the list (yet): keep the filter
      el.lastElementChild.value = v;
    }
    el.value = v;
  }
  for (const name of ['from', 'to']) {
    const v = q.get(name);
    const d = v ? new Date(v) : null;
    if (d && !isNaN(d)) fields[name].value = utcToBucharestInput(d);
  }
}

async function init() {
  if (!(await startPage('audit'))) return;
  for (const action of Object.keys(T.audit.actions)) {
    const o = h('option');
    bindText(o, () => T.audit.actions[action]);
    o.value = action;
    fields.action.append(o);
  }
  try {
    for (const c of await api('/api/v1/cameras')) {
      cameraNames.set(c.id, c.name || c.id);
      const o = data('option', c.name || c.id);
      o.value = c.id;
      fields.camera.append(o);
    }
  } catch {
    // the camera filter still takes the camera IDs of the address
  }
  fillFromURL();
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    apply();
  });
  document.getElementById('f-reset').addEventListener('click', () => {
    form.reset();
    apply();
  });
  document.getElementById('first').addEventListener('click', () => loadPage(0));
  document.getElementById('prev').addEventListener('click', () => loadPage(Math.max(0, pageIndex - 1)));
  document.getElementById('next').addEventListener('click', () => next && loadPage(pageIndex + 1));
  apply();
  document.documentElement.dataset.ready = 'true';
}

init().catch(showError);
