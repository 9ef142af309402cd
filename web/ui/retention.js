// retention.js — retention (IT&C): the policies and which are the file's, an editor
// that shows the dry-run plan of a change before it can be saved, the last runs, and
// a run on demand.

import { T, fmtDateTime } from './strings.js';
import { ApiError, api, bindText, data, h, showError as showFieldError, showStatus, startPage } from './app.js';

const statusBox = document.getElementById('status');
const errorBox = document.getElementById('error');
const editor = document.getElementById('editor');
const editorError = document.getElementById('editor-error');
const saveButton = document.getElementById('save');
const fields = {
  name: document.getElementById('p-name'),
  sites: document.getElementById('p-sites'),
  cameras: document.getElementById('p-cameras'),
  max_age: document.getElementById('p-max_age'),
  max_bytes: document.getElementById('p-max_bytes'),
  schedule: document.getElementById('p-schedule'),
  justification: document.getElementById('p-justification'),
};
let previewed = ''; // the editor's contents whose plan is shown: only those may be saved

const say = (fn) => showStatus(statusBox, fn);
// "policy.cameras[1]" marks the cameras field.
const showError = (box, err) => showFieldError(box, err, fields, (f) => f.replace(/^policy\./, '').replace(/\[\d+\]$/, ''));

/** bytes writes a size for people: 1.5 GB. */
function bytes(n) {
  if (!n) return '0';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function list(s) {
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

/** readPolicy is the editor as the API's policy. */
function readPolicy() {
  const p = { name: fields.name.value.trim(), max_age: fields.max_age.value.trim(), schedule: fields.schedule.value.trim() };
  const sites = list(fields.sites.value);
  const cameras = list(fields.cameras.value);
  if (sites.length) p.sites = sites;
  if (cameras.length) p.cameras = cameras;
  if (fields.max_bytes.value) p.max_bytes = Number(fields.max_bytes.value);
  if (fields.justification.value.trim()) p.justification = fields.justification.value.trim();
  if (!p.name) throw new ApiError(400, T.retention.editor.nameRequired, 'name');
  return p;
}

function edit(p) {
  fields.name.value = p.name;
  fields.sites.value = (p.sites || []).join(', ');
  fields.cameras.value = (p.cameras || []).join(', ');
  fields.max_age.value = p.max_age;
  fields.max_bytes.value = p.max_bytes || '';
  fields.schedule.value = p.schedule || '@hourly';
  fields.justification.value = p.justification || '';
  changed();
  fields.name.focus();
}

function changed() {
  saveButton.disabled = previewed === '' || previewed !== JSON.stringify(readPolicySafe());
}

function readPolicySafe() {
  try {
    return readPolicy();
  } catch {
    return null;
  }
}

function renderPolicies(res) {
  const tbody = document.querySelector('#policies tbody');
  const rows = res.policies.map((p) => {
    const tr = h('tr');
    tr.dataset.policy = p.name;
    tr.dataset.source = p.source;
    const covers = h('td');
    if (p.name === 'default') {
      bindText(covers, () => T.retention.coversDefault);
    } else {
      const parts = [];
      if (p.sites) parts.push(() => T.retention.coversSites(p.sites.join(', ')));
      if (p.cameras) parts.push(() => T.retention.coversCameras(p.cameras.join(', ')));
      bindText(covers, () => parts.map((f) => f()).join('; '));
    }
    const source = h('td');
    bindText(source, () => T.retention.sources[p.source] || p.source);
    const actions = h('td');
    if (p.source === 'api') {
      const e = h('button', '', 'retention.edit');
      e.type = 'button';
      e.addEventListener('click', () => edit(p));
      const d = h('button', 'danger', 'retention.delete');
      d.type = 'button';
      d.addEventListener('click', () => remove(p.name));
      actions.append(e, ' ', d);
    } else {
      const c = h('button', '', 'retention.copy');
      c.type = 'button';
      c.dataset.i18nTitle = 'retention.copyTitle';
      c.title = T.retention.copyTitle;
      c.addEventListener('click', () => edit({ ...p, name: '' }));
      actions.append(c);
    }
    tr.append(data('td', p.name), covers, data('td', p.max_age), data('td', p.max_bytes ? bytes(p.max_bytes) : '–'),
      data('td', p.schedule), data('td', p.justification || ''), source, actions);
    return tr;
  });
  tbody.replaceChildren(...rows);
}

function renderPlan(plan) {
  document.getElementById('plan-box').hidden = false;
  bindText(document.getElementById('plan-summary'), () => T.retention.plan.summary(plan.delete, bytes(plan.delete_bytes), plan.safety_stops));
  const tbody = document.querySelector('#plan tbody');
  const rows = plan.cameras.map((c) => {
    const tr = h('tr');
    tr.dataset.camera = c.camera;
    tr.dataset.delete = String(c.safety_stop ? 0 : c.delete);
    const range = data('td', '', 'nowrap');
    bindText(range, () => (c.from ? `${fmtDateTime(c.from)} – ${fmtDateTime(c.to)}` : '–'));
    const kept = data('td', '', 'nowrap');
    bindText(kept, () => (c.oldest_kept ? fmtDateTime(c.oldest_kept) : '–'));
    const stop = h('td');
    if (c.safety_stop) {
      tr.dataset.stop = 'true';
      const s = h('span', 'error', 'retention.plan.stopped');
      s.title = c.safety_stop;
      stop.append(s);
    }
    tr.append(data('td', c.camera), data('td', c.policy), data('td', `${c.delete} (${bytes(c.delete_bytes)})`), range, kept,
      data('td', String(c.held)), stop);
    return tr;
  });
  tbody.replaceChildren(...rows);
}

function renderRuns(runs) {
  const tbody = document.querySelector('#runs tbody');
  const rows = runs.map((r) => {
    const tr = h('tr');
    tr.dataset.run = String(r.id);
    tr.dataset.kind = r.kind;
    let deleted = 0;
    let size = 0;
    let errs = 0;
    let stops = 0;
    for (const c of r.cameras) {
      deleted += c.deleted;
      size += c.deleted_bytes;
      errs += c.errors;
      if (c.safety_stop) stops++;
    }
    const started = data('td', '', 'nowrap');
    bindText(started, () => fmtDateTime(r.started));
    const kind = h('td');
    bindText(kind, () => T.retention.kinds[r.kind] || r.kind);
    const problems = h('td');
    bindText(problems, () => {
      const out = [];
      if (!r.ended) out.push(T.retention.runs.unfinished);
      if (errs) out.push(T.retention.runs.errors(errs));
      if (stops) out.push(T.retention.runs.stops(stops));
      if (r.error) out.push(r.error);
      return out.join('; ');
    });
    tr.append(started, kind, data('td', r.policy || '–'), data('td', String(deleted)), data('td', bytes(size)), problems);
    return tr;
  });
  if (rows.length === 0) {
    const tr = h('tr');
    const td = h('td', 'muted', 'retention.runs.none');
    td.colSpan = 6;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

async function load() {
  try {
    const [pols, runs] = await Promise.all([api('/api/v1/retention/policies'), api('/api/v1/retention/runs?limit=20')]);
    renderPolicies(pols);
    renderRuns(runs);
    showError(errorBox, null);
  } catch (err) {
    showError(errorBox, err);
  }
}

async function preview() {
  say(null);
  let p;
  try {
    p = readPolicy();
    const plan = await api('/api/v1/retention/plan', { method: 'POST', body: { policy: p } });
    renderPlan(plan);
    showError(editorError, null);
    previewed = JSON.stringify(p);
  } catch (err) {
    showError(editorError, err);
    previewed = '';
  }
  changed();
}

async function save(ev) {
  ev.preventDefault();
  if (saveButton.disabled) return;
  try {
    const p = readPolicy();
    await api(`/api/v1/retention/policies/${encodeURIComponent(p.name)}`, { method: 'PUT', body: p });
    showError(editorError, null);
    say(() => T.retention.saved(p.name));
    previewed = '';
    changed();
    await load();
  } catch (err) {
    showError(editorError, err);
  }
}

async function remove(name) {
  say(null);
  try {
    await api(`/api/v1/retention/policies/${encodeURIComponent(name)}`, { method: 'DELETE' });
    say(() => T.retention.deleted(name));
    await load();
  } catch (err) {
    showError(errorBox, err);
  }
}

async function runNow(ev) {
  ev.preventDefault();
  const button = document.getElementById('run-now');
  button.disabled = true;
  say(() => T.retention.runs.running);
  try {
    const r = await api('/api/v1/retention/run', { method: 'POST', body: { force: document.getElementById('force').checked } });
    const deleted = r.cameras.reduce((n, c) => n + c.deleted, 0);
    say(() => T.retention.runs.done(deleted));
    showError(errorBox, null);
    await load();
  } catch (err) {
    say(null);
    showError(errorBox, err);
  } finally {
    button.disabled = false;
  }
}

async function main() {
  const me = await startPage('retention');
  if (!me) return;
  for (const el of Object.values(fields)) el.addEventListener('input', changed);
  document.getElementById('preview').addEventListener('click', preview);
  editor.addEventListener('submit', save);
  document.getElementById('run').addEventListener('submit', runNow);
  await load();
  document.documentElement.dataset.ready = 'true';
}

main();
