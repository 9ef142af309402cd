// users.js — the users page (IT&C): list, add, disable/enable, reset a password and
// edit a user's roles and the sites and cameras they may see. Errors show the API's words and mark
// the field it names.

import { T, fmtDate } from './strings.js';
import { api, bindText, data, h, showError, showStatus, startPage } from './app.js';

const tbody = document.querySelector('#users tbody');
const statusBox = document.getElementById('status');
const errorBox = document.getElementById('error');
const addForm = document.getElementById('add');
const addGrants = document.getElementById('add-grants');
let sites = []; // [{id, name}]
let cams = []; // [{id, name, site}]
let users = [];
let editor = null; // {username, kind: 'password'|'roles'|'grants', row}
let addPicker = null;

/** say shows an outcome (fn gives the text in the active language) and clears errors. */
function say(fn) {
  showStatus(statusBox, fn);
  showError(errorBox, null);
}


/**
 * grantPicker fills box with a tick box per site and per camera, ticked for grants,
 * and returns the function that reads the ticked grants back.
 */
function grantPicker(box, grants = []) {
  for (const g of box.querySelectorAll('.group')) g.remove();
  const has = new Set(grants.map((g) => `${g.kind}:${g.target}`));
  const group = (key, items, kind) => {
    const div = h('div', 'group');
    div.append(h('span', '', key));
    for (const it of items) {
      const label = h('label');
      const cb = h('input');
      cb.type = 'checkbox';
      cb.value = `${kind}:${it.id}`;
      cb.checked = has.has(cb.value);
      label.append(cb, data('span', it.name));
      div.append(label);
    }
    box.append(div);
  };
  group('users.sites', sites, 'site');
  group('users.cameras', cams, 'camera');
  return () => [...box.querySelectorAll('input[type=checkbox]:checked')].map((cb) => {
    const [kind, ...rest] = cb.value.split(':');
    return { kind, target: rest.join(':') };
  });
}

/** ROLES are the roles in the order the service documents them. */
const ROLES = ['guard', 'admin', 'itc'];

/** rolePicker fills box with a tick box per role, ticked for roles, and returns the reader. */
function rolePicker(box, roles = []) {
  for (const l of box.querySelectorAll('label')) l.remove();
  for (const r of ROLES) {
    const label = h('label');
    const cb = h('input');
    cb.type = 'checkbox';
    cb.value = r;
    cb.checked = roles.includes(r);
    label.append(cb, ' ', h('span', '', `roles.${r}`));
    box.append(label);
  }
  return () => readRoles(box);
}

function readRoles(box) {
  return [...box.querySelectorAll('input[type=checkbox]:checked')].map((cb) => cb.value);
}

function userRoles(u) {
  return Array.isArray(u.roles) ? u.roles : [u.role];
}

function grantChip(g) {
  const span = h('span', 'grant');
  const list = g.kind === 'site' ? sites : cams;
  const it = list.find((x) => x.id === g.target);
  span.append(h('span', '', g.kind === 'site' ? 'users.grantSite' : 'users.grantCamera'), ': ', data('span', it ? it.name : g.target));
  return span;
}

function button(key, onClick, cls) {
  const b = h('button', cls, key);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

function render() {
  const rows = [];
  if (users.length === 0) {
    const tr = h('tr');
    const td = h('td', 'muted', 'users.empty');
    td.colSpan = 6;
    tr.append(td);
    rows.push(tr);
  }
  for (const u of users) {
    const tr = h('tr');
    tr.dataset.user = u.username;
    tr.classList.toggle('is-disabled', u.disabled);
    const grants = h('td');
    if (u.grants && u.grants.length) grants.append(...u.grants.map(grantChip));
    else grants.append(h('span', 'muted', 'users.noGrants'));
    const created = data('td', '', 'nowrap');
    bindText(created, () => (u.created ? fmtDate(u.created) : ''));
    const actions = h('td');
    const box = h('div', 'actions');
    box.append(
      button(u.disabled ? 'users.enable' : 'users.disable', () => setDisabled(u, !u.disabled)),
      button('users.resetPassword', () => openEditor(u, 'password')),
      button('users.editGrants', () => openEditor(u, 'grants')),
      button('users.editRoles', () => openEditor(u, 'roles')),
    );
    actions.append(box);
    const roles = h('td', 'roles');
    roles.append(...userRoles(u).map((r) => h('span', 'role', `roles.${r}`)));
    tr.append(data('td', u.username), roles,
      h('td', '', u.disabled ? 'users.disabled' : 'users.active'), grants, created, actions);
    rows.push(tr);
    if (editor && editor.username === u.username) rows.push(editor.row);
  }
  tbody.replaceChildren(...rows);
}

async function load() {
  users = await api('/api/v1/users');
  users.sort((a, b) => a.username.localeCompare(b.username));
  if (editor && !users.some((u) => u.username === editor.username)) editor = null;
  render();
}

function userPath(u) {
  return `/api/v1/users/${encodeURIComponent(u.username)}`;
}

async function setDisabled(u, disabled) {
  try {
    await api(userPath(u), { method: 'PATCH', body: { disabled } });
    say(() => (disabled ? T.users.disabledDone(u.username) : T.users.enabledDone(u.username)));
    await load();
  } catch (err) {
    say(null);
    showError(errorBox, err);
  }
}

/** openEditor opens the password, roles or grants editor under u's row. */
function openEditor(u, kind) {
  const tr = h('tr', 'editor');
  tr.dataset.editor = kind;
  const td = h('td');
  td.colSpan = 6;
  tr.append(td);
  const err = h('div', 'error');
  err.setAttribute('role', 'alert');
  err.hidden = true;
  const save = button('common.save', null, 'primary');
  const cancel = button('common.cancel', () => {
    editor = null;
    render();
  });
  const bar = h('div', 'row');
  let submit;
  if (kind === 'password') {
    const field = h('div', 'field');
    const input = h('input');
    input.type = 'password';
    input.autocomplete = 'new-password';
    input.id = `password-${u.username}`;
    input.maxLength = 1024;
    const label = h('label', '', 'users.newPassword');
    label.htmlFor = input.id;
    field.append(label, input, h('span', 'hint', 'users.passwordHint'));
    bar.append(field, save, cancel);
    td.append(err, bar);
    submit = async () => {
      await api(userPath(u), { method: 'PATCH', body: { password: input.value } });
      return () => T.users.passwordDone(u.username);
    };
    submit.fields = { password: input };
    setTimeout(() => input.focus());
  } else if (kind === 'roles') {
    const fs = h('fieldset', 'roles');
    fs.append(h('legend', '', 'users.add.roles'));
    const read = rolePicker(fs, userRoles(u));
    bar.append(save, cancel);
    td.append(err, fs, h('p', 'hint muted', 'users.rolesHint'), bar);
    submit = async () => {
      await api(userPath(u), { method: 'PATCH', body: { roles: read() } });
      return () => T.users.rolesDone(u.username);
    };
    submit.fields = { roles: fs };
  } else {
    const fs = h('fieldset', 'grants');
    fs.append(h('legend', '', 'users.add.grants'));
    const read = grantPicker(fs, u.grants);
    bar.append(save, cancel);
    td.append(err, fs, bar);
    submit = async () => {
      await api(`${userPath(u)}/grants`, { method: 'PUT', body: { grants: read() } });
      return () => T.users.grantsDone(u.username);
    };
    submit.fields = { grants: fs };
  }
  save.addEventListener('click', async () => {
    save.disabled = true;
    try {
      const msg = await submit();
      editor = null;
      say(msg);
      await load();
    } catch (e) {
      showError(err, e, submit.fields);
    } finally {
      save.disabled = false;
    }
  });
  editor = { username: u.username, kind, row: tr };
  say(null);
  render();
}

async function addUser(ev) {
  ev.preventDefault();
  const f = {
    username: document.getElementById('add-username'),
    roles: document.getElementById('add-roles'),
    password: document.getElementById('add-password'),
    grants: addGrants,
  };
  const box = document.getElementById('add-error');
  const submit = document.getElementById('add-submit');
  const body = { username: f.username.value.trim(), roles: readRoles(f.roles), password: f.password.value, grants: addPicker() };
  submit.disabled = true;
  try {
    await api('/api/v1/users', { method: 'POST', body });
    showError(box, null, f);
    addForm.reset();
    addPicker = grantPicker(addGrants);
    say(() => T.users.added(body.username));
    await load();
  } catch (err) {
    showError(box, err, f);
  } finally {
    submit.disabled = false;
  }
}

async function init() {
  if (!(await startPage('users'))) return;
  const list = await api('/api/v1/cameras');
  const seen = new Map();
  for (const c of list) {
    if (c.site && !seen.has(c.site)) seen.set(c.site, { id: c.site, name: c.site_name || c.site });
  }
  sites = [...seen.values()];
  cams = list.map((c) => ({ id: c.id, name: c.name || c.id, site: c.site }));
  addPicker = grantPicker(addGrants);
  addForm.addEventListener('submit', addUser);
  await load();
  document.documentElement.dataset.ready = 'true';
}

init().catch((err) => showError(errorBox, err));
